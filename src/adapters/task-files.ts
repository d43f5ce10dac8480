/**
 * A task's files on the executor's side (core/files.ts says what they are):
 * written into a folder or a tar for /in, read back from a folder or a tar
 * for /out. Only regular files are kept; anything else is named in the
 * task's log and left out. Reading stops past the cap, so a task cannot
 * make its worker hold more than that in memory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { formatBytes, overCap, type FileData } from '../core/files.js';

/** What was read back: the files, and notes for the task's log (what was left out, and why). */
export interface ReadBack {
  files: FileData[];
  notes: string[];
  /** Set when what the task left is past its cap: nothing of it is kept. */
  error?: string;
}

/** A task's result with what was read back from its /out: the files, what was left out named in its log, and why nothing was kept, if so. */
export function withReadBack<R extends { output: string }>(result: R, back: ReadBack): R & { files: FileData[]; outError?: string } {
  const notes = back.notes.map((n) => `gitjobs: ${n}\n`).join('');
  return { ...result, output: result.output + notes, files: back.files, ...(back.error ? { outError: back.error } : {}) };
}

/** Writes `files` under `dir` (made), then makes it all read-only. */
export async function writeTree(dir: string, files: readonly FileData[]): Promise<void> {
  await fs.promises.mkdir(dir, { recursive: true });
  const dirs = new Set<string>([dir]);
  for (const f of files) {
    const target = path.join(dir, f.path);
    if (!target.startsWith(dir + path.sep)) throw new Error(`input path ${JSON.stringify(f.path)} leaves its folder`);
    const parent = path.dirname(target);
    await fs.promises.mkdir(parent, { recursive: true });
    for (let d = parent; d.startsWith(dir); d = path.dirname(d)) dirs.add(d);
    await fs.promises.writeFile(target, f.data, { mode: 0o444 });
  }
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) await fs.promises.chmod(d, 0o555);
}

/** Removes a folder made by writeTree or given to a task, whatever modes it left. */
export async function removeTree(dir: string): Promise<void> {
  const open = async (d: string): Promise<void> => {
    await fs.promises.chmod(d, 0o700).catch(() => undefined);
    for (const e of await fs.promises.readdir(d, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await open(path.join(d, e.name));
  };
  await open(dir);
  await fs.promises.rm(dir, { recursive: true, force: true });
}

/** The regular files under `dir`, paths relative to it; past `maxBytes` (by size, before reading) nothing is kept. */
export async function readTree(dir: string, maxBytes: number, shown = '/out'): Promise<ReadBack> {
  const found: { rel: string; size: number }[] = [];
  const notes: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    const entries = await fs.promises.readdir(d, { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path.join(d, e.name), r);
      else if (e.isFile()) found.push({ rel: r, size: (await fs.promises.lstat(path.join(d, e.name))).size });
      else notes.push(`${shown}/${r}: not a regular file, not kept`);
    }
  };
  await walk(dir, '');
  const total = found.reduce((n, f) => n + f.size, 0);
  if (total > maxBytes) return { files: [], notes, error: overCap(total, maxBytes, shown) };
  const files: FileData[] = [];
  for (const f of found) files.push({ path: f.rel, data: await fs.promises.readFile(path.join(dir, f.rel)) });
  return { files, notes };
}

/** A tar of `files` (under `root/` when given), read-only, owned by `owner` (the task's user in a container). */
export function tarOf(files: readonly FileData[], root = '', owner: { uid: number; gid: number } = { uid: 1000, gid: 1000 }): Readable {
  const pack = tar.pack();
  const dirs = new Set<string>();
  const at = (p: string) => (root ? `${root}/${p}` : p);
  const header = { uid: owner.uid, gid: owner.gid, mtime: new Date(0) };
  for (const f of files) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (dirs.has(d)) continue;
      dirs.add(d);
      pack.entry({ name: at(d), type: 'directory', mode: 0o555, ...header });
    }
    pack.entry({ name: at(f.path), type: 'file', mode: 0o444, size: f.data.length, ...header }, f.data);
  }
  pack.finalize();
  return pack as unknown as Readable;
}

/** The regular files of a tar whose entries are under `root/` (as `docker cp` gives a folder), read up to `maxBytes`. */
export async function readTar(stream: NodeJS.ReadableStream, root: string, maxBytes: number, shown = '/out'): Promise<ReadBack> {
  const extract = tar.extract();
  const files: FileData[] = [];
  const notes: string[] = [];
  let total = 0;
  let error: string | undefined;
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, body, next) => {
      const name = header.name.replace(/\/+$/, '');
      const rel = name === root ? '' : name.startsWith(`${root}/`) ? name.slice(root.length + 1) : name;
      if (header.type === 'file' || header.type === 'contiguous-file') {
        total += header.size ?? 0;
        if (total > maxBytes) error ??= `the task wrote more than ${formatBytes(maxBytes)} under ${shown}, its cap`;
        const chunks: Buffer[] = [];
        body.on('data', (c: unknown) => {
          if (!error) chunks.push(c as Buffer);
        });
        body.on('end', () => {
          if (!error) files.push({ path: rel, data: Buffer.concat(chunks) });
          next();
        });
        return;
      }
      if (header.type !== 'directory' && rel) notes.push(`${shown}/${rel}: not a regular file, not kept`);
      body.on('end', () => next());
      body.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  stream.pipe(extract);
  await done;
  return error ? { files: [], notes, error } : { files, notes };
}
