/**
 * Fault injection against the real broker, real Docker and real Git. Every
 * test ends by checking that each task has exactly one final state, the
 * result is right, and tracking's history tells what happened.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import { AmqpQueue } from '../../src/adapters/amqp/queue.js';
import { runIdFor } from '../../src/core/ids.js';
import { prefixedQueues } from '../../src/core/settings.js';
import type { RunRecord } from '../../src/core/run.js';
import type { TaskRecord } from '../../src/core/task.js';
import { finishedRun, gitjobs, readRun, resultText, startUp, startWorker, waitFor, type Proc } from '../helpers/processes.js';
import { AMQP_URL, git, gitAsync, startStack, tmpdir, type Stack } from '../helpers/stack.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

function track(p: Proc): Proc {
  cleanups.push(() => {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });
  return p;
}

function prefix(): string {
  const p = `test-faults-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  cleanups.push(async () => {
    const q = await AmqpQueue.connect({ url: AMQP_URL, queues: prefixedQueues(p) });
    await q.deleteQueues();
    await q.close();
  });
  return p;
}

function home(): string {
  const h = tmpdir('faults');
  cleanups.push(() => fs.rmSync(h, { recursive: true, force: true }));
  return h;
}

async function pushTo(url: string, file: string, project: unknown): Promise<string> {
  const dir = tmpdir('faults-clone');
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  await gitAsync(dir, 'clone', '-q', `${url}/git/tache_a_faire.git`, '.');
  fs.writeFileSync(path.join(dir, file), JSON.stringify(project));
  git(dir, 'add', '-A');
  git(dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', `Add ${file}`);
  await gitAsync(dir, 'push', '-q', 'origin', 'main');
  return git(dir, 'rev-parse', 'HEAD').trim();
}

/** A transition that ends a task: succeeded, or failed with no attempt left. */
function endsTask(subject: string): boolean {
  if (/running -> succeeded \(/.test(subject) || / -> cancelled \(/.test(subject)) return true;
  if (!/running -> failed \(/.test(subject)) return false;
  const m = /attempt (\d+)\/(\d+)\)$/.exec(subject);
  return !m || m[1] === m[2];
}

/** Each task ends in exactly one final state, once; the history of each task is a valid story. */
function checkStory(view: { run: RunRecord; tasks: TaskRecord[]; log: string[] }): void {
  const { run, log } = view;
  expect(run.doneCommit).toBeTruthy();
  expect(log[0]).toMatch(new RegExp(`^${run.id}: queued`));
  expect(log.at(-1)).toMatch(new RegExp(`^${run.id}: (running|queued) -> (succeeded|failed|cancelled)`));
  for (const t of view.tasks) {
    const own = log.filter((s) => s.startsWith(`${run.id}/${t.id}: `));
    expect(own.filter(endsTask), `${t.id}: ${own.join(' | ')}`).toHaveLength(1);
    expect(own[0]).toMatch(/queued -> (running|cancelled)/);
    expect(endsTask(own.at(-1)!)).toBe(true);
  }
}

const sleepy = (n: number, seconds: number) => ({ tasks: Array.from({ length: n }, (_, i) => ({ id: `t${i}`, run: `sleep ${seconds}; echo t${i}` })) });
const expected = (n: number) => Array.from({ length: n }, (_, i) => `t${i}\n`).join('');

describe('faults', () => {
  it('a worker killed with SIGKILL in the middle of a task: another worker takes the task over and its container is reaped', async () => {
    const h = home();
    const p = prefix();
    const server = track(await startUp(h, p, 0));
    const w1 = track(await startWorker(p, path.join(h, 'w1'), 2));
    const commit = await pushTo(server.url, 'projects/kill.json', sleepy(3, 3));
    const runId = runIdFor('projects/kill.json', commit);
    await waitFor('a task running', async () => (await readRun(h, runId))?.tasks.some((t) => t.state === 'running'));
    const w1pid = w1.child.pid!;
    w1.child.kill('SIGKILL');
    await w1.exited;
    const docker = new Docker();
    const leftover = () => docker.listContainers({ all: true, filters: { label: [`io.gitjobs.worker-pid=${w1pid}`] } });
    expect((await leftover()).length).toBeGreaterThan(0);
    track(await startWorker(p, path.join(h, 'w2'), 2));
    expect(await leftover()).toHaveLength(0);
    const view = await finishedRun(h, runId);
    expect(view.run.state).toBe('succeeded');
    expect(await resultText(h, runId)).toBe(expected(3));
    checkStory(view);
    expect(view.log.some((s) => /running -> running \(attempt 1\/1 redelivered to .+; .+ stopped reporting\)/.test(s))).toBe(true);
  });

  it('RabbitMQ restarted (stop_app / start_app) in the middle of a run', async () => {
    const stack = await startStack({ workers: 2 });
    cleanups.push(() => stack.stop());
    const commit = await stack.push({ 'projects/broker.json': JSON.stringify(sleepy(6, 1)) });
    const runId = runIdFor('projects/broker.json', commit);
    await waitFor('a task done', async () => (await stack.readRun(runId))?.tasks.some((t) => t.state === 'succeeded'));
    execFileSync('rabbitmqctl', ['stop_app'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 3000));
    } finally {
      execFileSync('rabbitmqctl', ['start_app'], { stdio: 'ignore' });
    }
    const view = await stack.waitForRun(runId, 120_000);
    expect(view.run.state).toBe('succeeded');
    expect((await stack.result(runId)).text).toBe(expected(6));
    expect(stack.running.queue.reconnects).toBeGreaterThanOrEqual(1);
    const log = (await stack.running.store.log('tache_suivi')).map((c) => c.message.split('\n')[0]!).filter((s) => s.startsWith(runId)).reverse();
    checkStory({ ...view, log });
  });

  it('gitjobs up killed with SIGKILL between two transitions, then started again', async () => {
    const h = home();
    const p = prefix();
    const fast = { GITJOBS_HEARTBEAT: '500ms' };
    let server = track(await startUp(h, p, 2, fast));
    const commit = await pushTo(server.url, 'projects/crash.json', sleepy(4, 1));
    const runId = runIdFor('projects/crash.json', commit);
    await waitFor('some transitions', async () => ((await readRun(h, runId))?.log.length ?? 0) >= 4);
    server.child.kill('SIGKILL');
    await server.exited;
    server = track(await startUp(h, p, 2, fast));
    const view = await finishedRun(h, runId);
    expect(view.run.state).toBe('succeeded');
    expect(await resultText(h, runId)).toBe(expected(4));
    checkStory(view);
  });

  it('gitjobs up restarted while a worker elsewhere runs a task: the task runs once, not again from recovery', async () => {
    const h = home();
    const p = prefix();
    const fast = { GITJOBS_HEARTBEAT: '500ms' };
    let server = track(await startUp(h, p, 0, fast));
    const count = path.join(h, 'executions');
    track(await gitjobs(['worker', '--executor', 'process', '--workers', '2', '--cache', path.join(h, 'w1')], { GITJOBS_QUEUE_PREFIX: p, ...fast }, /taking tasks from/));
    const commit = await pushTo(server.url, 'projects/once.json', { tasks: [{ id: 'once', run: `echo x >> ${count}; sleep 4; echo done` }] });
    const runId = runIdFor('projects/once.json', commit);
    await waitFor('running', async () => (await readRun(h, runId))?.tasks[0]!.state === 'running');
    server.child.kill('SIGKILL');
    await server.exited;
    server = track(await startUp(h, p, 0, fast));
    const view = await finishedRun(h, runId);
    expect(view.run.state).toBe('succeeded');
    // The worker's second slot was free: a copy queued by recovery would have run beside the first.
    expect(fs.readFileSync(count, 'utf8')).toBe('x\n');
    expect(view.log).toEqual([`${runId}: queued (1 task from projects/once.json)`, expect.stringMatching(new RegExp(`^${runId}/once: queued -> running `)), expect.stringMatching(new RegExp(`^${runId}/once: running -> succeeded `)), expect.stringMatching(new RegExp(`^${runId}: running -> succeeded`))]);
  });

  it('a worker that starts a task tracking has already settled (its run cancelled before the worker came) is told to stop it', async () => {
    const h = home();
    const p = prefix();
    const server = track(await startUp(h, p, 0));
    const commit = await pushTo(server.url, 'projects/late.json', { tasks: [{ id: 'slow', run: 'sleep 60' }] });
    const runId = runIdFor('projects/late.json', commit);
    await waitFor('queued', async () => (await readRun(h, runId))?.tasks[0]!.state === 'queued');
    // Cancelled while no worker is up: its message stays in TODO, and a worker that starts later has not heard of the cancel.
    const res = await fetch(`${server.url}/api/runs/${runId}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(202);
    const cancelled = await finishedRun(h, runId);
    expect(cancelled.run.state).toBe('cancelled');
    const w = track(await gitjobs(['worker', '--workers', '1', '--cache', path.join(h, 'w1')], { GITJOBS_QUEUE_PREFIX: p, GITJOBS_LOG_LEVEL: 'info' }, /taking tasks from/));
    // Stopped within seconds, not after its 60 s; its container is gone; tracking does not change.
    await waitFor('the worker to stop it', async () => w.output().includes('task killed: a duplicate copy of an attempt that tracking has settled'), 30_000);
    const docker = new Docker();
    await waitFor('its container gone', async () => (await docker.listContainers({ all: true, filters: { label: [`io.gitjobs.run=${runId}`] } })).length === 0, 10_000);
    const after = await readRun(h, runId);
    expect(after!.log).toEqual(cancelled.log);
  });

  it('every queue deleted while gitjobs is stopped: the next start finishes the run from Git', async () => {
    const h = home();
    const p = prefix();
    // Running attempts are queued again once no worker has reported them for three heartbeats.
    const fast = { GITJOBS_HEARTBEAT: '500ms' };
    let server = track(await startUp(h, p, 1, fast));
    const commit = await pushTo(server.url, 'projects/noqueues.json', sleepy(4, 1));
    const runId = runIdFor('projects/noqueues.json', commit);
    await waitFor('a task running', async () => (await readRun(h, runId))?.tasks.some((t) => t.state === 'running'));
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const q = await AmqpQueue.connect({ url: AMQP_URL, queues: prefixedQueues(p) });
    await q.deleteQueues();
    await q.close();
    const before = await readRun(h, runId);
    expect(before!.run.doneCommit).toBeUndefined();
    server = track(await startUp(h, p, 2, fast));
    const view = await finishedRun(h, runId);
    expect(view.run.state).toBe('succeeded');
    expect(await resultText(h, runId)).toBe(expected(4));
    checkStory(view);
  });

  it('two gitjobs up on one home and one RabbitMQ: both collectors write tracking, no commit lost, history never forked', async () => {
    const h = home();
    const p = prefix();
    const a = track(await startUp(h, p, 2));
    track(await startUp(h, p, 2));
    const runs: string[] = [];
    for (const name of ['one', 'two', 'three']) {
      const commit = await pushTo(a.url, `projects/${name}.json`, sleepy(4, 0.3));
      runs.push(runIdFor(`projects/${name}.json`, commit));
    }
    for (const runId of runs) {
      const view = await finishedRun(h, runId);
      expect(view.run.state, JSON.stringify(view.tasks.filter((t) => t.state !== 'succeeded'), null, 1) + view.log.join('\n')).toBe('succeeded');
      expect(await resultText(h, runId)).toBe(expected(4));
      expect(view.log).toHaveLength(1 + 4 * 2 + 1);
      checkStory(view);
    }
    const gitdir = path.join(h, 'repos', 'tache_suivi.git');
    expect(git(gitdir, 'rev-list', '--merges', 'main').trim()).toBe('');
    git(gitdir, 'fsck', '--strict');
    const doneDir = path.join(h, 'repos', 'tache_termine.git');
    // One result commit per run, never two.
    expect(git(doneDir, 'log', '--format=%s', 'main').trim().split('\n').filter((l) => runs.some((r) => l.startsWith(r)))).toHaveLength(3);
  });

  it('a worker stopped with SIGTERM lets its tasks run for --grace, then gives them back to another worker', async () => {
    const h = home();
    const p = prefix();
    const server = track(await startUp(h, p, 0));
    const w1 = track(await gitjobs(['worker', '--workers', '2', '--grace', '1s', '--cache', path.join(h, 'w1')], { GITJOBS_QUEUE_PREFIX: p }, /taking tasks from/));
    const commit = await pushTo(server.url, 'projects/grace.json', sleepy(2, 4));
    const runId = runIdFor('projects/grace.json', commit);
    await waitFor('both tasks running', async () => (await readRun(h, runId))?.tasks.every((t) => t.state === 'running'));
    const stopped = Date.now();
    w1.child.kill('SIGTERM');
    expect(await w1.exited).toBe(0);
    expect(Date.now() - stopped).toBeLessThan(4000);
    track(await startWorker(p, path.join(h, 'w2'), 2));
    const view = await finishedRun(h, runId);
    expect(view.run.state).toBe('succeeded');
    expect(await resultText(h, runId)).toBe(expected(2));
    checkStory(view);
    expect(view.log.filter((s) => / running -> running \(attempt 1\/1 redelivered/.test(s))).toHaveLength(2);
  });

  describe('tasks longer than the broker lets a delivery stay unacked', () => {
    const setBroker = (timeout: number, tick: number) => {
      execFileSync('rabbitmqctl', ['eval', `application:set_env(rabbit, consumer_timeout, ${timeout}).`], { stdio: 'ignore' });
      execFileSync('rabbitmqctl', ['eval', `application:set_env(rabbit, channel_tick_interval, ${tick}).`], { stdio: 'ignore' });
    };

    it('run once with a lease (acked at start, heartbeats), where holding the message would run them twice', async () => {
      setBroker(2000, 500);
      cleanups.push(() => setBroker(1_800_000, 60_000));
      const h = home();
      const p = prefix();
      const server = track(await startUp(h, p, 0));
      const count = path.join(h, 'executions');
      const project = (name: string) => ({ tasks: [{ id: 'long', run: `echo x >> ${count}-${name}; sleep 6; echo done`, timeout: '60s' }] });
      // Told the broker's real timeout: the task is leased and runs once.
      const leased = track(
        await gitjobs(['worker', '--executor', 'process', '--consumer-timeout', '2s', '--cache', path.join(h, 'w1')], { GITJOBS_QUEUE_PREFIX: p, GITJOBS_HEARTBEAT: '500ms' }, /taking tasks from/),
      );
      expect(leased.output()).toContain('NO sandbox');
      let commit = await pushTo(server.url, 'projects/leased.json', project('leased'));
      let runId = runIdFor('projects/leased.json', commit);
      let view = await finishedRun(h, runId);
      expect(view.run.state).toBe('succeeded');
      expect(fs.readFileSync(`${count}-leased`, 'utf8')).toBe('x\n');
      expect(view.log.filter((s) => / running -> running /.test(s))).toHaveLength(0);
      checkStory(view);
      leased.child.kill('SIGTERM');
      await leased.exited;

      // Not told (it thinks the broker waits 30 minutes): the broker takes the delivery back and it runs again.
      track(await gitjobs(['worker', '--executor', 'process', '--cache', path.join(h, 'w2')], { GITJOBS_QUEUE_PREFIX: p }, /taking tasks from/));
      commit = await pushTo(server.url, 'projects/held.json', project('held'));
      runId = runIdFor('projects/held.json', commit);
      view = await finishedRun(h, runId);
      expect(fs.readFileSync(`${count}-held`, 'utf8').length).toBeGreaterThanOrEqual(4);
    });

    it('a leased attempt whose worker is killed is recorded lost when its heartbeats stop, then retried', async () => {
      const h = home();
      const p = prefix();
      const server = track(await startUp(h, p, 0));
      const env = { GITJOBS_QUEUE_PREFIX: p, GITJOBS_HEARTBEAT: '500ms' };
      const w1 = track(await gitjobs(['worker', '--consumer-timeout', '2s', '--cache', path.join(h, 'w1')], env, /taking tasks from/));
      const commit = await pushTo(server.url, 'projects/lost.json', { retries: 1, tasks: [{ id: 'long', run: 'sleep 3; echo survived', timeout: '60s' }] });
      const runId = runIdFor('projects/lost.json', commit);
      await waitFor('running', async () => (await readRun(h, runId))?.tasks[0]!.state === 'running');
      w1.child.kill('SIGKILL');
      await w1.exited;
      track(await gitjobs(['worker', '--consumer-timeout', '2s', '--cache', path.join(h, 'w2')], env, /taking tasks from/));
      const view = await finishedRun(h, runId);
      expect(view.run.state).toBe('succeeded');
      expect(await resultText(h, runId)).toBe('survived\n');
      expect(view.log).toContainEqual(expect.stringMatching(new RegExp(`^${runId}/long: running -> failed \\(worker lost: no heartbeat from \\S+ for 1\\.50s, \\d+\\.\\d\\ds, attempt 1/2\\)$`)));
      checkStory(view);
    });
    it('a lease outlives the collector that saw its attempt start: another gitjobs up records the loss from the heartbeats it heard', async () => {
      const h = home();
      const p = prefix();
      const env = { GITJOBS_QUEUE_PREFIX: p, GITJOBS_HEARTBEAT: '500ms' };
      const up = () => gitjobs(['up', '--home', h, '--port', '0', '--workers', '0'], env, /gitjobs is up at (http:\/\/\S+)[\s\S]*Ctrl-C stops/);
      // Two collectors share DONE: each sees one of the two `started` events.
      const a = track(await up());
      track(await up());
      const w1 = track(await gitjobs(['worker', '--workers', '2', '--consumer-timeout', '2s', '--cache', path.join(h, 'w1')], env, /taking tasks from/));
      const long = (id: string) => ({ id, run: `sleep 4; echo ${id}`, timeout: '60s' });
      const commit = await pushTo(a.match[1]!, 'projects/two.json', { retries: 1, tasks: [long('x'), long('y')] });
      const runId = runIdFor('projects/two.json', commit);
      await waitFor('both running', async () => (await readRun(h, runId))?.tasks.every((t) => t.state === 'running'));
      await new Promise((r) => setTimeout(r, 1200)); // the survivor hears heartbeats of both
      a.child.kill('SIGKILL');
      w1.child.kill('SIGKILL');
      await Promise.all([a.exited, w1.exited]);
      track(await gitjobs(['worker', '--workers', '2', '--consumer-timeout', '2s', '--cache', path.join(h, 'w2')], env, /taking tasks from/));
      const view = await finishedRun(h, runId);
      expect(view.run.state).toBe('succeeded');
      expect(await resultText(h, runId)).toBe('x\ny\n');
      expect(view.log.filter((s) => / running -> failed \(worker lost: no heartbeat from /.test(s))).toHaveLength(2);
      checkStory(view);
    });
  });

  describe('in one process', () => {
    let stack: Stack;
    const start = async () => {
      stack = await startStack({ workers: 2, settings: { retryBaseMs: 200 } });
      cleanups.push(() => stack.stop());
    };

    it('the same DONE message delivered twice changes nothing the second time', async () => {
      await start();
      const commit = await stack.push({ 'projects/dup.json': JSON.stringify({ tasks: [{ id: 'a', run: 'echo a' }, { id: 'b', run: 'sleep 2; echo b' }] }) });
      const runId = runIdFor('projects/dup.json', commit);
      const a = await waitFor('task a done', async () => (await stack.readRun(runId))?.tasks.find((t) => t.id === 'a' && t.state === 'succeeded'));
      const base = { v: 1, run: runId, task: 'a', attempt: 1, host: a.worker!.host, worker: a.worker!.id, image: a.worker!.image, at: new Date().toISOString() };
      const finished = { ...base, kind: 'finished', exitCode: 0, durationMs: 10, timedOut: false, stdout: 'a\n', output: 'a\n', truncated: false };
      for (const e of [{ ...base, kind: 'started' }, finished, finished]) await stack.running.queue.publish('done', e);
      const view = await stack.waitForRun(runId);
      expect((await stack.result(runId)).text).toBe('a\nb\n');
      const log = (await stack.running.store.log('tache_suivi')).map((c) => c.message.split('\n')[0]!).filter((s) => s.startsWith(runId)).reverse();
      expect(log.filter((s) => s.startsWith(`${runId}/a:`))).toEqual([expect.stringMatching(/queued -> running/), expect.stringMatching(/running -> succeeded/)]);
      checkStory({ ...view, log });
    });

    it('a task that sleeps past its timeout is killed and recorded failed (timeout after 1.00s), and dead-lettered', async () => {
      await start();
      const commit = await stack.push({ 'projects/slow.json': JSON.stringify({ tasks: [{ id: 'slow', run: 'sleep 30', timeout: '1s' }, { id: 'ok', run: 'echo ok' }] }) });
      const runId = runIdFor('projects/slow.json', commit);
      const view = await stack.waitForRun(runId);
      expect(view.run.state).toBe('failed');
      const slow = view.tasks.find((t) => t.id === 'slow')!;
      expect(slow).toMatchObject({ state: 'failed', timedOut: true, exitCode: null, error: 'timeout after 1.00s' });
      expect(slow.durationMs!).toBeLessThan(10_000);
      const log = (await stack.running.store.log('tache_suivi')).map((c) => c.message.split('\n')[0]!);
      expect(log).toContainEqual(expect.stringMatching(new RegExp(`^${runId}/slow: running -> failed \\(timeout after 1.00s, \\d+\\.\\d\\ds\\)$`)));
      expect((await stack.result(runId)).json.error).toBe('1 of 2 tasks failed: slow (timeout after 1.00s)');
      const dead = JSON.parse((await stack.running.queue.take('dead'))!.toString());
      expect(dead).toMatchObject({ run: runId, task: 'slow', attempt: 1, reason: 'timeout after 1.00s' });
    });

    it('a task that fails twice then succeeds with retries: 2 — each attempt is in the history', async () => {
      await start();
      const task = { id: 'flaky', run: 'if [ "$GITJOBS_ATTEMPT" -ge 3 ]; then echo third time lucky; else echo "attempt $GITJOBS_ATTEMPT fails" >&2; exit 1; fi' };
      const commit = await stack.push({ 'projects/flaky.json': JSON.stringify({ retries: 2, tasks: [task] }) });
      const runId = runIdFor('projects/flaky.json', commit);
      const view = await stack.waitForRun(runId);
      expect(view.run.state).toBe('succeeded');
      expect(view.tasks[0]).toMatchObject({ state: 'succeeded', attempts: 3, maxAttempts: 3 });
      expect((await stack.result(runId)).text).toBe('third time lucky\n');
      const log = (await stack.running.store.log('tache_suivi')).map((c) => c.message.split('\n')[0]!).filter((s) => s.startsWith(`${runId}/flaky:`)).reverse();
      expect(log).toEqual([
        expect.stringMatching(/queued -> running \(attempt 1\/3 on /),
        expect.stringMatching(/running -> failed \(exit 1, \d+\.\d\ds, attempt 1\/3\)$/),
        expect.stringMatching(/failed -> queued \(retry: attempt 2\/3 in 0\.20s\)$/),
        expect.stringMatching(/queued -> running \(attempt 2\/3 on /),
        expect.stringMatching(/running -> failed \(exit 1, \d+\.\d\ds, attempt 2\/3\)$/),
        expect.stringMatching(/failed -> queued \(retry: attempt 3\/3 in 0\.40s\)$/),
        expect.stringMatching(/queued -> running \(attempt 3\/3 on /),
        expect.stringMatching(/running -> succeeded \(exit 0, \d+\.\d\ds, attempt 3\/3\)$/),
      ]);
      expect(await stack.running.queue.take('dead')).toBeUndefined();
    });

    it('a run cancelled halfway: running containers are killed, queued tasks end cancelled, the result says so', async () => {
      await start();
      const commit = await stack.push({ 'projects/cancel.json': JSON.stringify({ tasks: [{ id: 'quick', run: 'echo quick' }, ...sleepy(5, 20).tasks] }) });
      const runId = runIdFor('projects/cancel.json', commit);
      await waitFor('quick done and two running', async () => {
        const v = await stack.readRun(runId);
        return v && v.tasks[0]!.state === 'succeeded' && v.tasks.filter((t) => t.state === 'running').length === 2;
      });
      const res = await fetch(`${stack.running.url}/api/runs/${runId}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'changed my mind' }) });
      expect(res.status).toBe(202);
      expect(await res.json()).toEqual({ cancelled: true, tasks: 5 });
      const view = await stack.waitForRun(runId);
      expect(view.run.state).toBe('cancelled');
      expect(view.tasks.map((t) => t.state)).toEqual(['succeeded', 'cancelled', 'cancelled', 'cancelled', 'cancelled', 'cancelled']);
      const { json, text } = await stack.result(runId);
      expect(json.state).toBe('cancelled');
      expect(text).toBe('CANCELLED: cancelled (changed my mind): 1 of 6 tasks had finished\n');
      const docker = new Docker();
      await waitFor('containers killed', async () => (await docker.listContainers({ all: true, filters: { label: [`io.gitjobs.run=${runId}`] } })).length === 0, 10_000);
      const log = (await stack.running.store.log('tache_suivi')).map((c) => c.message.split('\n')[0]!).filter((s) => s.startsWith(runId)).reverse();
      expect(log.filter((s) => s.endsWith('running -> cancelled (changed my mind)'))).toHaveLength(2);
      expect(log.filter((s) => s.endsWith('queued -> cancelled (changed my mind)'))).toHaveLength(3);
      checkStory({ ...view, log });
      expect((await fetch(`${stack.running.url}/api/runs/${runId}/cancel`, { method: 'POST' })).status).toBe(409);
    });

    it('deleting the project file cancels its run', async () => {
      await start();
      const dir = await stack.clone('tache_a_faire');
      fs.writeFileSync(path.join(dir, 'projects/gone.json'), JSON.stringify(sleepy(2, 20)));
      git(dir, 'add', '-A');
      git(dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'add');
      await gitAsync(dir, 'push', '-q', 'origin', 'main');
      const runId = runIdFor('projects/gone.json', git(dir, 'rev-parse', 'HEAD').trim());
      await waitFor('running', async () => (await stack.readRun(runId))?.tasks.some((t) => t.state === 'running'));
      git(dir, 'rm', '-q', 'projects/gone.json');
      git(dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'remove');
      await gitAsync(dir, 'push', '-q', 'origin', 'main');
      const deletion = git(dir, 'rev-parse', 'HEAD').trim();
      const view = await stack.waitForRun(runId);
      expect(view.run.state).toBe('cancelled');
      expect(view.tasks.every((t) => t.state === 'cancelled')).toBe(true);
      expect(view.tasks[0]!.error).toBe(`cancelled: projects/gone.json deleted in ${deletion.slice(0, 7)}`);
    });
  });
});
