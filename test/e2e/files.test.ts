/**
 * Files in and out against the real things: a `git push` of a project whose
 * tasks write under /out in their containers (tmpfs volumes held by a
 * keeper), a reduce task of the user's own reading them under /in, the
 * files committed to done and read back with the stock git CLI, and the
 * caps enforced by the container's own file system.
 */
import Docker from 'dockerode';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIdFor } from '../../src/core/ids.js';
import { filesDir } from '../../src/core/files.js';
import { runPaths } from '../../src/core/layout.js';
import { git, startStack, type Stack } from '../helpers/stack.js';

const example = (name: string) => fs.readFileSync(path.resolve('repos-template/todo/examples', name), 'utf8');

describe.each(['docker', 'process'] as const)('files in and out (%s executor)', (executor) => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ workers: 2, executor });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('the README worked example: N-Queens split two rows deep, each count in /out, summed by a task that reads /in', async () => {
    const commit = await stack.push({ 'projects/queens-files.json': example('queens-files.json') });
    const runId = runIdFor('projects/queens-files.json', commit);
    const { run, tasks } = await stack.waitForRun(runId, 180_000);
    expect(run.error, JSON.stringify(tasks.filter((t) => t.state !== 'succeeded').map((t) => [t.id, t.error, t.outputTail]))).toBeUndefined();
    expect(run.state).toBe('succeeded');
    expect(tasks).toHaveLength(33);
    expect((await stack.result(runId)).text).toBe('92\n');
    // Each solver's count is in done, in the run's folder, and result.json names its blob.
    const dir = await stack.clone(stack.settings.repos.done);
    const counts = tasks.filter((t) => t.id.startsWith('solve-')).map((t) => Number(git(dir, 'show', `HEAD:${filesDir(run, t.id)}/count`).trim()));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(92);
    const result = JSON.parse(git(dir, 'show', `HEAD:${runPaths(run).resultJson}`)) as { tasks: { id: string; files?: Record<string, string> }[] };
    const solve = result.tasks.find((t) => t.id === 'solve-1.3')!;
    expect(solve.files!.count).toBe(git(dir, 'rev-parse', `HEAD:${filesDir(run, 'solve-1.3')}/count`).trim());
    expect(result.tasks.find((t) => t.id === 'sum')!.files).toBeUndefined();
  });

  it('passes files and stdout along, read-only, and commits them with their blob ids', async () => {
    const commit = await stack.push({ 'projects/files.json': example('files.json') });
    const runId = runIdFor('projects/files.json', commit);
    const { run, tasks } = await stack.waitForRun(runId, 60_000);
    expect(run.state).toBe('succeeded');
    expect((await stack.result(runId)).text).toBe('making\nsum 15\nhello\n');
    const make = tasks.find((t) => t.id === 'make')!;
    expect(make.files!.entries.map((e) => [e.path, e.bytes])).toEqual([['notes/hello.txt', 6], ['numbers.txt', 10]]);
    const dir = await stack.clone(stack.settings.repos.done);
    expect(git(dir, 'show', `${make.files!.commit}:${filesDir(run, 'make')}/numbers.txt`)).toBe('1\n2\n3\n4\n5\n');
    expect(git(dir, 'rev-parse', `HEAD:${filesDir(run, 'make')}/notes/hello.txt`).trim()).toBe(make.files!.entries[0]!.blob);
    expect(git(dir, 'log', '-1', '--format=%s', make.files!.commit).trim()).toBe(`${runId}/make: 2 files from /out (16 B, attempt 1)`);
    git(dir, 'fsck', '--strict');
    // `gitjobs verify` finds every file result.json names in the run's folder, as that blob; one byte changed is found.
    const tracking = await stack.clone(stack.settings.repos.tracking);
    const verify = () => spawnSync(process.execPath, ['dist/cli/main.js', 'verify', runId, '--tracking', tracking, '--done', dir], { encoding: 'utf8' });
    expect(verify().stdout).toContain(`${runId}: verified 2 tasks (succeeded)`);
    expect(verify().status).toBe(0);
    fs.writeFileSync(path.join(dir, filesDir(run, 'make'), 'numbers.txt'), '1\n2\n3\n4\n6\n');
    git(dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qam', 'tamper');
    expect(verify().status).toBe(1);
    expect(verify().stdout).toContain(`make: ${filesDir(run, 'make')}/numbers.txt in done is blob`);

    // The same project through `gitjobs submit --wait`, as a user with the CLI.
    if (executor === 'docker') {
      // Not spawnSync: the server runs in this process, and must answer meanwhile.
      const submitted = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, ['dist/cli/main.js', 'submit', 'repos-template/todo/examples/files.json', '--as', 'files-submitted', '--wait', '--url', stack.running.url], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d));
        child.stderr.on('data', (d: Buffer) => (out += d));
        child.on('close', (code) => resolve({ code, out }));
      });
      expect(submitted.out).toContain('making\nsum 15\nhello\n');
      expect(submitted.code).toBe(0);
    }

    // /in is read-only to the task (in a container; the process executor runs as whoever runs it).
    if (executor === 'docker') {
      const c2 = await stack.push({ 'projects/ro.json': JSON.stringify({ tasks: [{ id: 'a', run: 'echo a', out: true }, { id: 'b', needs: ['a'], run: 'touch /in/a/x' }] }) });
      const ro = await stack.waitForRun(runIdFor('projects/ro.json', c2), 60_000);
      expect(ro.tasks[1]!.state).toBe('failed');
      expect(await stack.log(ro.run.id, 'b')).toMatch(/Read-only file system/);
    }
  });

  it('enforces the caps: past its cap a task fails saying so and nothing of it is kept; a failed task keeps nothing', async () => {
    const project = {
      tasks: [
        // Writes 200 KiB where 100 KiB are allowed, and says it succeeded.
        { id: 'over', run: 'head -c 204800 /dev/zero > $GITJOBS_OUT/big; echo wrote', out: '100k' },
        // A runaway writer: the container's file system stops it (a process task has no such guard: not run there).
        ...(executor === 'docker' ? [{ id: 'runaway', run: 'cat /dev/zero > $GITJOBS_OUT/huge', out: '1m', timeout: '60s' }] : []),
        { id: 'fails', run: 'echo x > $GITJOBS_OUT/x; exit 5', out: true },
        { id: 'fine', run: 'head -c 1000 /dev/zero > $GITJOBS_OUT/small', out: '100k' },
      ],
    };
    const commit = await stack.push({ 'projects/caps.json': JSON.stringify(project) });
    const runId = runIdFor('projects/caps.json', commit);
    const { run, tasks } = await stack.waitForRun(runId, 120_000);
    const by = Object.fromEntries(tasks.map((t) => [t.id, t]));
    expect(by.over!.state).toBe('failed');
    expect(by.over!.error).toMatch(/^the task wrote (200 KiB|0\.2 MiB|more than 100 KiB) under (\/out|\$GITJOBS_OUT)/);
    expect(by.over!.files).toBeUndefined();
    if (executor === 'docker') expect(by.runaway!.state).toBe('failed');
    expect(by.fails!.state).toBe('failed');
    expect(by.fails!.files).toBeUndefined();
    expect(by.fine!.state).toBe('succeeded');
    expect(by.fine!.files!.entries).toEqual([{ path: 'small', blob: expect.stringMatching(/^[0-9a-f]{40}$/), bytes: 1000 }]);
    const dir = await stack.clone(stack.settings.repos.done);
    const kept = git(dir, 'ls-tree', '-r', '--name-only', 'HEAD', `${runPaths(run).dir}/files`).trim().split('\n');
    expect(kept).toEqual([`${filesDir(run, 'fine')}/small`]);
    if (executor === 'docker') {
      expect(await stack.log(runId, 'runaway')).toMatch(/No space left on device[\s\S]*gitjobs: \/out may be full: this task may write at most 1 MiB there/);
      // Nothing of this run is left behind: no keeper, no volume.
      const docker = new Docker();
      const ofRun = { label: ['io.gitjobs.files=true', `io.gitjobs.run=${runId}`] };
      expect((await docker.listVolumes({ filters: ofRun })).Volumes ?? []).toEqual([]);
      expect(await docker.listContainers({ all: true, filters: ofRun })).toEqual([]);
    }
  });
});
