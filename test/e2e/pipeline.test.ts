/**
 * The whole pipeline against the real things: a `git push` with the stock git
 * CLI to the built-in host, RabbitMQ, a Docker container per task, commits
 * in tracking and done.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runIdFor } from '../../src/core/ids.js';
import { NQUEENS_KNOWN, nqueensTasks } from '../../src/core/nqueens.js';
import { parseTrailers } from '../../src/core/transition.js';
import { runPaths } from '../../src/core/layout.js';
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

  it('counts N-Queens for n = 1..12, each split into containers that share half the board', async () => {
    const files: Record<string, string> = {};
    for (let n = 1; n <= 12; n++) files[`projects/q${n}.json`] = JSON.stringify({ project: `q${n}`, nqueens: { n } });
    const commit = await stack.push(files, 'N-Queens 1..12');
    const counts: number[] = [];
    for (let n = 1; n <= 12; n++) {
      const runId = runIdFor(`projects/q${n}.json`, commit);
      const { run, tasks } = await stack.waitForRun(runId, 180_000);
      expect(run.state, `q${n}`).toBe('succeeded');
      expect(tasks).toHaveLength(nqueensTasks(n).length);
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
    const log = fs.readFileSync(`${dir}/${runPaths({ id: runId, layout: 2, taskFanout: 0 }).logFile('bad')}`, 'utf8');
    // stdout and stderr come through separate pipes, so their relative order is not guaranteed.
    expect(log.split('\n').sort()).toEqual(['', 'about to fail', 'oops']);
  });

  it('gives each attempt its run, task and attempt in its environment, and retries after the backoff', async () => {
    // Fails on its first attempt, succeeds on its second: the environment says which one it is.
    const project = { retries: 1, tasks: [{ id: 'env', run: 'echo "$GITJOBS_RUN $GITJOBS_TASK $GITJOBS_ATTEMPT"; [ "$GITJOBS_ATTEMPT" = 2 ]' }] };
    const commit = await stack.push({ 'projects/env.json': JSON.stringify(project) });
    const runId = runIdFor('projects/env.json', commit);
    const { run, tasks } = await stack.waitForRun(runId);
    expect(run.state).toBe('succeeded');
    expect(tasks[0]).toMatchObject({ state: 'succeeded', attempts: 2 });
    expect(await stack.stdout(runId, 'env')).toBe(`${runId} env 2\n`);
    // The second attempt started no sooner than the default backoff (2 s) after the first ended, by tracking's own times.
    const dir = await stack.clone(stack.settings.repos.tracking);
    const times = git(dir, 'log', '--reverse', '--format=%ct %s', '--grep', `^${runId}/env: `).trim().split('\n');
    const failedAt = Number(times.find((l) => / -> failed /.test(l) || / failed -> queued/.test(l))!.split(' ')[0]);
    const secondAt = Number(times.filter((l) => / queued -> (running|succeeded)/.test(l)).at(-1)!.split(' ')[0]);
    expect(secondAt - failedAt).toBeGreaterThanOrEqual(2);
  });

  it('runs one container per combination of a matrix, and retries only the exit codes a retry policy names', async () => {
    const project = {
      reduce: 'lines',
      retry: { max: 2, on_exit: [75], backoff: '500ms' },
      tasks: [
        { id: 'greet', run: 'echo {greeting} {name}', matrix: { greeting: ['hello', 'bonjour'], name: ['ada', 'linus'], exclude: [{ greeting: 'bonjour', name: 'linus' }], include: [{ greeting: 'hallo', name: 'linus' }] } },
        { id: 'flaky', run: '[ "$GITJOBS_ATTEMPT" -ge 2 ] || exit 75; echo flaky ok on $GITJOBS_ATTEMPT' },
        { id: 'broken', run: 'echo broken; exit 1' },
      ],
    };
    const commit = await stack.push({ 'projects/sweep.json': JSON.stringify(project) });
    const runId = runIdFor('projects/sweep.json', commit);
    const { run, tasks } = await stack.waitForRun(runId);
    expect(run.state).toBe('failed');
    expect(tasks.map((t) => [t.id, t.state, t.attempts])).toEqual([
      ['greet_greeting-hello_name-ada', 'succeeded', 1],
      ['greet_greeting-hello_name-linus', 'succeeded', 1],
      ['greet_greeting-bonjour_name-ada', 'succeeded', 1],
      ['greet_greeting-hallo_name-linus', 'succeeded', 1],
      ['flaky', 'succeeded', 2],
      ['broken', 'failed', 1],
    ]);
    expect(await stack.stdout(runId, 'greet_greeting-bonjour_name-ada')).toBe('bonjour ada\n');
    expect(await stack.stdout(runId, 'flaky')).toBe('flaky ok on 2\n');
    const dir = await stack.clone(stack.settings.repos.tracking);
    const subjects = git(dir, 'log', '--reverse', '--format=%s', '--grep', `^${runId}/`).trim().split('\n');
    expect(subjects.filter((s) => s.startsWith(`${runId}/flaky: failed -> queued`))).toHaveLength(1);
    expect(subjects).toContainEqual(expect.stringMatching(/\/broken: running -> failed \(exit 1, .*attempt 1\/3, exit 1 is not retried \(on_exit 75\)\)$/));
    // The task list written at queue time keeps each task's policy.
    const list = fs.readFileSync(`${dir}/${runPaths({ id: runId, layout: 2, taskFanout: 0 }).taskList!}`, 'utf8');
    expect(JSON.parse(list.split('\n')[5]!)).toMatchObject({ id: 'broken', maxAttempts: 3, retryOn: { exit: [75] }, backoffMs: 500 });
  });

  it('runs a three-level graph of needs: a failure skips what needs it and what needs that, the rest runs on; a cycle is refused, named', async () => {
    const project = {
      tasks: [
        { id: 'fetch-{part}', run: 'echo part {part}', matrix: { part: [1, 2] } },
        { id: 'broken', run: 'echo broken; exit 4' },
        { id: 'count', run: 'echo counted', needs: ['fetch-{part}'] },
        { id: 'fix', run: 'echo fixed', needs: ['broken'] },
        { id: 'report', run: 'echo report', needs: ['count', 'fix'] },
        { id: 'summary', run: 'echo summary', needs: ['count'] },
      ],
    };
    const commit = await stack.push({ 'projects/graph.json': JSON.stringify(project), 'projects/ring.json': JSON.stringify({ tasks: [{ id: 'a', run: 'true', needs: ['b'] }, { id: 'b', run: 'true', needs: ['a'] }] }) });
    const runId = runIdFor('projects/graph.json', commit);
    const { run, tasks } = await stack.waitForRun(runId);
    expect(tasks.map((t) => [t.id, t.state])).toEqual([
      ['fetch-1', 'succeeded'],
      ['fetch-2', 'succeeded'],
      ['broken', 'failed'],
      ['count', 'succeeded'],
      ['fix', 'skipped'],
      ['report', 'skipped'],
      ['summary', 'succeeded'],
    ]);
    expect(run.state).toBe('failed');
    expect(run.error).toBe('1 of 7 tasks failed: broken (exit 4); 2 skipped (fix, report)');
    const dir = await stack.clone(stack.settings.repos.tracking);
    const subjects = git(dir, 'log', '--reverse', '--format=%s', '--grep', `^${runId}/`).trim().split('\n');
    const at = (prefix: string) => subjects.findIndex((s) => s.startsWith(prefix));
    expect(subjects).toContain(`${runId}/count: waiting -> queued (needs met: fetch-1, fetch-2)`);
    expect(subjects).toContain(`${runId}/fix: waiting -> skipped (needs broken, which failed)`);
    expect(subjects).toContain(`${runId}/report: waiting -> skipped (needs fix, which was skipped)`);
    for (const part of [1, 2]) expect(at(`${runId}/fetch-${part}: running -> succeeded`)).toBeLessThan(at(`${runId}/count: waiting -> queued`));
    expect(at(`${runId}/count: running -> succeeded`)).toBeLessThan(at(`${runId}/summary: waiting -> queued`));
    // Nothing skipped ever started.
    expect(subjects.filter((s) => /\/(fix|report): queued -> running/.test(s))).toEqual([]);
    expect((await stack.result(runId)).text).toBe('FAILED: 1 of 7 tasks failed: broken (exit 4); 2 skipped (fix, report)\n');
    const ring = await stack.waitForRun(runIdFor('projects/ring.json', commit));
    expect(ring.run.state).toBe('rejected');
    expect(ring.run.error).toBe('projects/ring.json: $.tasks[0].needs: needs form a cycle (each needs the next): a -> b -> a');
  });

  it('parallel holds a run to one task at a time, while a run pushed after it still gets a worker', async () => {
    const commit = await stack.push({ 'projects/held.json': JSON.stringify({ parallel: 1, tasks: [1, 2, 3].map((i) => ({ id: `s${i}`, run: 'sleep 1; echo s' + i })) }) });
    const held = runIdFor('projects/held.json', commit);
    const after = await stack.push({ 'projects/quick.json': JSON.stringify({ tasks: [{ id: 'q', run: 'echo quick' }] }) });
    const quick = runIdFor('projects/quick.json', after);
    const [h, q] = await Promise.all([stack.waitForRun(held), stack.waitForRun(quick)]);
    expect([h.run.state, q.run.state]).toEqual(['succeeded', 'succeeded']);
    const dir = await stack.clone(stack.settings.repos.tracking);
    const subjects = git(dir, 'log', '--reverse', '--format=%s').trim().split('\n');
    const at = (prefix: string) => subjects.findIndex((s) => s.startsWith(prefix));
    for (const i of [2, 3]) {
      expect(subjects).toContain(`${held}/s${i}: waiting -> queued (a slot of parallel 1)`);
      expect(at(`${held}/s${i - 1}: running -> succeeded`)).toBeLessThan(at(`${held}/s${i}: waiting -> queued`));
    }
    // The second worker slot was free for the other run: it ended before the held run's last task began.
    expect(at(`${quick}/q: running -> succeeded`)).toBeLessThan(at(`${held}/s3: waiting -> queued`));
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
    // The push was dispatched when it came: the same (repository, before, after) again starts nothing.
    const [first, second] = await Promise.all([stack.running.dispatcher.handlePush(event), stack.running.dispatcher.handlePush(event)]);
    expect(first).toEqual([]);
    expect(second).toEqual([]);
    expect(stack.logs()).toContain('push already dispatched; ignored');
    const dir = await stack.clone(stack.settings.repos.tracking);
    const queued = git(dir, 'log', '--format=%s', '--grep', `^${runId}: queued`).trim().split('\n');
    expect(queued).toHaveLength(1);
    expect(git(dir, 'log', '--format=%s', '--', runPaths({ id: runId, layout: 2, taskFanout: 0 }).taskFile('only')).trim().split('\n')).toHaveLength(3);
  });

  it('shows one commit per transition in `git log` of the tracking repo cloned with git', async () => {
    const project = { project: 'three', tasks: ['a', 'b', 'c'].map((id) => ({ id, run: `echo ${id}` })) };
    const commit = await stack.push({ 'projects/three.json': JSON.stringify(project) });
    const runId = runIdFor('projects/three.json', commit);
    await stack.waitForRun(runId);
    const dir = await stack.clone(stack.settings.repos.tracking);
    const subjects = git(dir, 'log', '--reverse', '--format=%s', '--grep', `^${runId}[:/]`).trim().split('\n');
    // queued (run), published, 2 transitions per task, the run's final state.
    expect(subjects).toHaveLength(2 + 3 * 2 + 1);
    expect(subjects[0]).toBe(`${runId}: queued (3 tasks from projects/three.json)`);
    expect(subjects[1]).toBe(`${runId}: published (3 TODO messages confirmed by the broker)`);
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
  it('names worker images by the worker folder: a config commit that does not touch it builds nothing', async () => {
    const dir = await stack.clone(stack.settings.repos.config);
    const commitAll = (msg: string) => {
      git(dir, 'add', '-A');
      git(dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', msg);
    };
    fs.mkdirSync(`${dir}/workers/steady`, { recursive: true });
    fs.writeFileSync(`${dir}/workers/steady/Dockerfile`, 'ARG BASE_IMAGE=gitjobs-base:latest\nFROM ${BASE_IMAGE}\nRUN echo steady > /steady\nUSER 1000:1000\n');
    commitAll('Add the steady worker');
    await gitAsync(dir, 'push', '-q', 'origin', 'main');
    const docker = new DockerExecutor({ baseImage: 'gitjobs-base:latest' });
    const images = async () => (await docker.docker.listImages({ filters: { label: ['io.gitjobs.worker=steady'] } })).map((i) => i.Id);
    try {
      const first = await stack.push({ 'projects/steady1.json': JSON.stringify({ worker: 'steady', tasks: [{ id: 's', run: 'cat /steady' }] }) });
      const one = await stack.waitForRun(runIdFor('projects/steady1.json', first));
      expect(await images()).toHaveLength(1);
      // A config commit elsewhere: the same image, nothing built.
      fs.writeFileSync(`${dir}/README.md`, 'notes\n');
      commitAll('Notes, no worker touched');
      await gitAsync(dir, 'push', '-q', 'origin', 'main');
      const second = await stack.push({ 'projects/steady2.json': JSON.stringify({ worker: 'steady', tasks: [{ id: 's', run: 'cat /steady' }] }) });
      const two = await stack.waitForRun(runIdFor('projects/steady2.json', second));
      expect(two.run.configCommit).not.toBe(one.run.configCommit);
      expect(two.tasks[0]!.worker!.image).toBe(one.tasks[0]!.worker!.image);
      expect(await images()).toHaveLength(1);
      expect((await stack.result(two.run.id)).text).toBe('steady\n');
      // The worker's own folder changed: a new image.
      fs.writeFileSync(`${dir}/workers/steady/Dockerfile`, 'ARG BASE_IMAGE=gitjobs-base:latest\nFROM ${BASE_IMAGE}\nRUN echo changed > /steady\nUSER 1000:1000\n');
      commitAll('steady: changed');
      await gitAsync(dir, 'push', '-q', 'origin', 'main');
      const third = await stack.push({ 'projects/steady3.json': JSON.stringify({ worker: 'steady', tasks: [{ id: 's', run: 'cat /steady' }] }) });
      const three = await stack.waitForRun(runIdFor('projects/steady3.json', third));
      expect(three.tasks[0]!.worker!.image).not.toBe(one.tasks[0]!.worker!.image);
      expect((await stack.result(three.run.id)).text).toBe('changed\n');
      expect(await images()).toHaveLength(2);
    } finally {
      for (const id of await images()) await docker.docker.getImage(id).remove({ force: true }).catch(() => undefined);
    }
  });

  it('builds the worker images of a pushed config commit, and later runs use that commit', async () => {
    const dir = await stack.clone(stack.settings.repos.config);
    fs.mkdirSync(`${dir}/workers/greeter`, { recursive: true });
    fs.writeFileSync(`${dir}/workers/greeter/Dockerfile`, 'ARG BASE_IMAGE=gitjobs-base:latest\nFROM ${BASE_IMAGE}\nRUN echo "hello from the greeter image" > /greeting\nUSER 1000:1000\n');
    git(dir, 'add', '-A');
    git(dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'Add greeter worker');
    await gitAsync(dir, 'push', '-q', 'origin', 'main');
    const configCommit = git(dir, 'rev-parse', 'HEAD').trim();
    const docker = new DockerExecutor({ baseImage: 'gitjobs-base:latest' });
    const tree = git(dir, 'rev-parse', 'HEAD:workers/greeter').trim();
    const tag = DockerExecutor.tagFor({ name: 'greeter', commit: configCommit, tree }, (await docker.docker.getImage('gitjobs-base:latest').inspect()).Id);
    await vi.waitFor(async () => expect((await docker.docker.getImage(tag).inspect()).RepoTags).toContain(tag), { timeout: 60_000, interval: 200 });

    const commit = await stack.push({ 'projects/greet.json': JSON.stringify({ worker: 'greeter', tasks: [{ id: 'g', run: 'cat /greeting' }] }) });
    const runId = runIdFor('projects/greet.json', commit);
    const { run } = await stack.waitForRun(runId);
    expect(run.configCommit).toBe(configCommit);
    expect((await stack.result(runId)).text).toBe('hello from the greeter image\n');
    await docker.docker.getImage(tag).remove({ force: true }).catch(() => undefined);
  });
});
