/** The executor side of files: folders and tars in and out, caps, and what is left out. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import tar from 'tar-stream';
import { readTar, readTree, removeTree, tarOf, writeTree } from '../../src/adapters/task-files.js';

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-files-test-'));
  dirs.push(d);
  return d;
};
afterEach(async () => {
  for (const d of dirs.splice(0)) await removeTree(d);
});

const files = [
  { path: 'a/stdout', data: Buffer.from('42\n') },
  { path: 'a/files/deep/x.bin', data: Buffer.from([0, 1, 2, 255]) },
];

describe('task files', () => {
  it('writes inputs into a read-only folder and reads a folder back, in path order', async () => {
    const d = path.join(tmp(), 'in');
    await writeTree(d, files);
    expect(fs.statSync(path.join(d, 'a/stdout')).mode & 0o777).toBe(0o444);
    expect(fs.statSync(path.join(d, 'a/files')).mode & 0o777).toBe(0o555);
    const back = await readTree(d, 1024);
    expect(back).toEqual({ files: [files[1], files[0]], notes: [] });
    await expect(writeTree(path.join(tmp(), 'x'), [{ path: '../escape', data: Buffer.from('') }])).rejects.toThrow('input path "../escape" leaves its folder');
  });

  it('reads nothing of a folder past its cap, and names what is not a regular file', async () => {
    const d = tmp();
    fs.writeFileSync(path.join(d, 'big'), Buffer.alloc(2000));
    fs.symlinkSync('big', path.join(d, 'link'));
    expect(await readTree(d, 1000, '$GITJOBS_OUT')).toEqual({ files: [], notes: ['$GITJOBS_OUT/link: not a regular file, not kept'], error: 'the task wrote 2 KiB under $GITJOBS_OUT, past its cap of 1000 B' });
    expect((await readTree(d, 2000)).files.map((f) => f.path)).toEqual(['big']);
  });

  it('packs a tar owned by the task user and reads one back as Docker gives a folder', async () => {
    const entries: { name: string; uid: number; mode: number }[] = [];
    const extract = tar.extract();
    extract.on('entry', (h, body, next) => {
      entries.push({ name: h.name, uid: h.uid ?? -1, mode: h.mode ?? 0 });
      body.on('end', next);
      body.resume();
    });
    const finished = new Promise<void>((r) => extract.on('finish', () => r()));
    tarOf(files).pipe(extract);
    await finished;
    expect(entries).toEqual([
      { name: 'a', uid: 1000, mode: 0o555 },
      { name: 'a/stdout', uid: 1000, mode: 0o444 },
      { name: 'a/files', uid: 1000, mode: 0o555 },
      { name: 'a/files/deep', uid: 1000, mode: 0o555 },
      { name: 'a/files/deep/x.bin', uid: 1000, mode: 0o444 },
    ]);
    const back = await readTar(tarOf(files, 'out'), 'out', 1024);
    expect(back).toEqual({ files, notes: [] });
    expect((await readTar(tarOf(files, 'out'), 'out', 4)).error).toBe('the task wrote more than 4 B under /out, its cap');
  });
});
