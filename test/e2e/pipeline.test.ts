/**
 * The whole pipeline against the real things: a `git push` with the stock git
 * CLI to the built-in host, RabbitMQ, a Docker container per task, commits
 * in tracking and done.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runIdFor } from '../../src/core/ids.js';
import { NQUEENS_KNOWN } from '../../src/core/nqueens.js';
import { parseTrailers } from '../../src/core/transition.js';
import fs from 'node:fs';
import { DockerExecutor } from '../../src/adapters/docker/executor.js';
import { git, gitAsync, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ workers: 2 });
});
afterAll(async () => {
  await stack?.stop();
});

const PROTOTYPE = [0, 1, 2, 3].map((i) => ({
  cmd: 'echo ',
  id_projet: 0,
  id_task: String(i),
  phrase: `la tache numero ${i} dit bonjour au projet numero 0`,
  url: '/home/test/env/projet/mgit_repo/tache_a_faire',
}));

describe('pipeline, end to end', () => {
  it("runs the prototype's array format and commits the phrases in task order", async () => {
    const commit = await stack.push({ 'projects/prototype.json': JSON.stringify(PROTOTYPE, null, 2) });
    const runId = runIdFor('projects/prototype.json', commit);
    const { run, tasks } = await stack.waitForRun(runId);
    expect(run.state).toBe('succeeded');
    expect(tasks.map((t) => t.state)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    const { json, text } = await stack.result(runId);
    expect(text).toBe(PROTOTYPE.map((t) => `${t.phrase}\n`).join(''));
    expect(json.state).toBe('succeeded');
    expect(json.commits.todo).toBe(commit);
    expect(json.commits.config).toMatch(/^[0-9a-f]{40}$/);
    expect(json.commits.tracking).toMatch(/^[0-9a-f]{40}$/);
  });

  it('counts N-Queens for n = 1..12, each split into one container per column', async () => {
    const files: Record<string, string> = {};
    for (let n = 1; n <= 12; n++) files[`projects/q${n}.json`] = JSON.stringify({ project: `q${n}`, nqueens: { n } });
    const commit = await stack.push(files, 'N-Queens 1..12');
    const counts: number[] = [];
    for (let n = 1; n <= 12; n++) {
      const runId = runIdFor(`projects/q${n}.json`, commit);
      const { run, tasks } = await stack.waitForRun(runId, 180_000);
      expect(run.state, `q${n}`).toBe('succeeded');
      expect(tasks).toHaveLength(n);
      const { json, text } = await stack.result(runId);
      expect(json.value).toBe(Number(text.trim()));
      counts.push(json.value as number);
    }
    expect(counts).toEqual([1, 0, 0, 2, 10, 4, 40, 92, 352, 724, 2680, 14200]);
    expect(counts).toEqual(NQUEENS_KNOWN.slice(1, 13));
  });

  it('records a task that exits 3 as failed, with its exit code and output, and the result says so', async () => {
    const project = { project: 'exit3', tasks: [{ id: 'ok', run: 'echo fine' }, { id: 'bad', run: 'echo about to fail; echo oops >&2; exit 3' }] };
    const commit = await stack.push({ 'projects/exit3.json': JSON.stringify(project) });
    const runId = runIdFor('projects/exit3.json', commit);
    const { run, tasks } = await stack.waitForRun(runId);
    expect(run.state).toBe('failed');
    const bad = tasks.find((t) => t.id === 'bad')!;
    expect(bad.state).toBe('failed');
    expect(bad.exitCode).toBe(3);
    expect(bad.outputTail).toContain('about to fail');
    expect(bad.outputTail).toContain('oops');
    expect(tasks.find((t) => t.id === 'ok')!.state).toBe('succeeded');
    const { json, text } = await stack.result(runId);
    expect(json.state).toBe('failed');
    expect(json.error).toContain('bad (exit 3)');
    expect(text).toMatch(/^FAILED: 1 of 2 tasks failed: bad \(exit 3\)/);
    // The whole output is in the log file, cloned with the git CLI.
    const dir = await stack.clone(stack.settings.repos.tracking);
    const log = fs.readFileSync(`${dir}/projects/${runId}/logs/bad.log`, 'utf8');
    // stdout and stderr come through separate pipes, so their relative order is not guaranteed.
    expect(log.split('\n').sort()).toEqual(['', 'about to fail', 'oops']);
  });

  it('rejects an invalid file with a message naming file, JSON path and problem, while a valid file in the same push runs', async () => {
    const commit = await stack.push({
      'projects/broken.json': JSON.stringify({ project: 'broken', tasks: [{ id: 'a', run: 'echo a' }, { id: 'b', run: 42 }] }),
      'projects/fine.json': JSON.stringify({ project: 'fine', tasks: [{ id: 'a', run: ['echo', 'still runs'] }] }),
    });
    const rejected = await stack.waitForRun(runIdFor('projects/broken.json', commit));
    expect(rejected.run.state).toBe('rejected');
    expect(rejected.run.error).toContain('projects/broken.json');
    expect(rejected.run.error).toContain('$.tasks[1].run');
    expect(rejected.run.error).toMatch(/shell command string or an array of strings/);
    const fine = await stack.waitForRun(runIdFor('projects/fine.json', commit));
    expect(fine.run.state).toBe('succeeded');
    expect((await stack.result(fine.run.id)).text).toBe('still runs\n');
  });

  it('creates one run when the same push event is delivered twice', async () => {
    const before = (await stack.running.store.head(stack.settings.repos.todo))!;
    const commit = await stack.push({ 'projects/twice.json': JSON.stringify({ project: 'twice', tasks: [{ id: 'only', run: 'echo once' }] }) });
    const runId = runIdFor('projects/twice.json', commit);
    await stack.waitForRun(runId);
    const event = { repo: stack.settings.repos.todo, ref: 'refs/heads/main', before, after: commit, source: 'test-redelivery' };
    const [first, second] = await Promise.all([stack.running.dispatcher.handlePush(event), stack.running.dispatcher.handlePush(event)]);
    expect(first).toEqual([{ file: 'projects/twice.json', run: runId, outcome: 'duplicate' }]);
    expect(second).toEqual(first);
    const dir = await stack.clone(stack.settings.repos.tracking);
    const queued = git(dir, 'log', '--format=%s', '--grep', `^${runId}: queued`).trim().split('\n');
    expect(queued).toHaveLength(1);
    expect(git(dir, 'log', '--format=%s', '--', `projects/${runId}/tasks/only.json`).trim().split('\n')).toHaveLength(3);
  });

  it('shows one commit per transition in `git log` of the tracking repo cloned with git', async () => {
    const project = { project: 'three', tasks: ['a', 'b', 'c'].map((id) => ({ id, run: `echo ${id}` })) };
    const commit = await stack.push({ 'projects/three.json': JSON.stringify(project) });
    const runId = runIdFor('projects/three.json', commit);
    await stack.waitForRun(runId);
    const dir = await stack.clone(stack.settings.repos.tracking);
    const subjects = git(dir, 'log', '--reverse', '--format=%s', '--grep', `^${runId}[:/]`).trim().split('\n');
    // queued (run), 2 transitions per task, the run's final state.
    expect(subjects).toHaveLength(1 + 3 * 2 + 1);
    expect(subjects[0]).toBe(`${runId}: queued (3 tasks from projects/three.json)`);
    for (const id of ['a', 'b', 'c']) {
      const own = subjects.filter((s) => s.startsWith(`${runId}/${id}:`));
      expect(own[0]).toMatch(new RegExp(`^${runId}/${id}: queued -> running \\(attempt 1/1 on .+\\)$`));
      expect(own[1]).toMatch(new RegExp(`^${runId}/${id}: running -> succeeded \\(exit 0, \\d+\\.\\d\\ds\\)$`));
      expect(own).toHaveLength(2);
    }
    expect(subjects.at(-1)).toBe(`${runId}: running -> succeeded`);
    // Trailers tie each transition to its sources.
    const full = git(dir, 'log', '-1', '--format=%B', '--grep', `^${runId}/a: running -> succeeded`);
    const trailers = parseTrailers(full);
    expect(trailers['Todo-Commit']).toBe(commit);
    expect(trailers['Config-Commit']).toMatch(/^[0-9a-f]{40}$/);
    expect(trailers['Worker-Host']).toBeTruthy();
    expect(trailers.Image).toMatch(/^sha256:[0-9a-f]{64}$/);
    // History is linear and the repository is sound.
    expect(git(dir, 'rev-list', '--merges', 'HEAD').trim()).toBe('');
    git(dir, 'fsck', '--strict');
  });
});

describe('config repository', () => {
  it('builds the worker images of a pushed config commit, and later runs use that commit', async () => {
    const dir = await stack.clone(stack.settings.repos.config);
    fs.mkdirSync(`${dir}/workers/greeter`, { recursive: true });
    fs.writeFileSync(`${dir}/workers/greeter/Dockerfile`, 'ARG BASE_IMAGE=gitjobs-base:latest\nFROM ${BASE_IMAGE}\nRUN echo "hello from the greeter image" > /greeting\nUSER 1000:1000\n');
    git(dir, 'add', '-A');
    git(dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'Add greeter worker');
    await gitAsync(dir, 'push', '-q', 'origin', 'main');
    const configCommit = git(dir, 'rev-parse', 'HEAD').trim();
    const docker = new DockerExecutor({ baseImage: 'gitjobs-base:latest' });
    const tag = DockerExecutor.tagFor({ name: 'greeter', commit: configCommit });
    await vi.waitFor(async () => expect((await docker.docker.getImage(tag).inspect()).RepoTags).toContain(tag), { timeout: 60_000, interval: 200 });

    const commit = await stack.push({ 'projects/greet.json': JSON.stringify({ worker: 'greeter', tasks: [{ id: 'g', run: 'cat /greeting' }] }) });
    const runId = runIdFor('projects/greet.json', commit);
    const { run } = await stack.waitForRun(runId);
    expect(run.configCommit).toBe(configCommit);
    expect((await stack.result(runId)).text).toBe('hello from the greeter image\n');
    await docker.docker.getImage(tag).remove({ force: true }).catch(() => undefined);
  });
});
