/**
 * Fault injection against the real broker, real Docker and real Git. Every
 * test ends by checking that each task has exactly one final state, the
 * result is right, and tracking's history tells what happened.
 */
import { execFileSync, spawnSync } from 'node:child_process';
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
import { AMQP_URL, git, gitAsync, rmTree, startStack, tmpdir, type Stack } from '../helpers/stack.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  // A cleanup that throws (a folder a killed process's git child still writes in) does not stop the others.
  for (const c of cleanups.splice(0).reverse()) await (async () => c())().catch(() => undefined);
});

/**
 * How many times a run's tasks were started, counted outside gitjobs: with
 * processes, a line each appends to a file on this machine; with
 * containers (which see no host file), the engine's own start events.
 */
function executionCounter(executor: 'process' | 'docker', h: string): { mark: string; count(runId: string): Promise<number> } {
  const since = Math.floor(Date.now() / 1000) - 1;
  if (executor === 'process') {
    const file = path.join(h, 'executions');
    return { mark: `echo "$GITJOBS_RUN" >> ${file}`, count: async (runId) => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l === runId).length };
  }
  return {
    mark: 'true',
    count: async (runId) => {
      const events = (await new Docker().getEvents({ since, until: Math.floor(Date.now() / 1000) + 1, filters: { type: ['container'], event: ['start'], label: [`io.gitjobs.run=${runId}`] } })) as NodeJS.ReadableStream;
      let text = '';
      for await (const chunk of events) text += chunk.toString();
      return text.split('\n').filter((l) => l.trim()).length;
    },
  };
}

function track<P extends Proc>(p: P): P {
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
  cleanups.push(() => rmTree(h));
  return h;
}

async function pushTo(url: string, file: string, project: unknown): Promise<string> {
  const dir = tmpdir('faults-clone');
  cleanups.push(() => rmTree(dir));
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

/** The commit that keeps what a killed attempt printed, after its task was cancelled: not a transition. */
const keptOutput = (subject: string) => /: cancelled \(output of attempt \d+ kept, /.test(subject);

/** Each task ends in exactly one final state, once; the history of each task is a valid story. */
function checkStory(view: { run: RunRecord; tasks: TaskRecord[]; log: string[] }): void {
  const { run } = view;
  const log = view.log.filter((s) => !keptOutput(s));
  expect(run.doneCommit).toBeTruthy();
  expect(log[0]).toMatch(new RegExp(`^${run.id}: queued`));
  expect(log.at(-1)).toMatch(new RegExp(`^${run.id}: (running|queued) -> (succeeded|failed|cancelled)`));
  for (const t of view.tasks) {
    const own = log.filter((s) => s.startsWith(`${run.id}/${t.id}: `));
    expect(own.filter(endsTask), `${t.id}: ${own.join(' | ')}`).toHaveLength(1);
    expect(own[0]).toMatch(/queued -> (running|cancelled)/);
    expect(endsTask(own.at(-1)!)).toBe(true);
    // At most one kept output, for a task that was running when it was cancelled, after its cancel.
    const all = view.log.filter((s) => s.startsWith(`${run.id}/${t.id}: `));
    const kept = all.filter(keptOutput);
    expect(kept.length).toBeLessThanOrEqual(1);
    if (kept.length) {
      expect(all.indexOf(kept[0]!)).toBeGreaterThan(all.findIndex((s) => /running -> cancelled \(/.test(s)));
      expect(all.some((s) => /running -> cancelled \(/.test(s))).toBe(true);
    }
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
    const docker = new Docker();
    const leftover = () => docker.listContainers({ all: true, filters: { label: [`io.gitjobs.worker-pid=${w1pid}`] } });
    // Tracking can say running a moment before the container exists (`started` goes out 100 ms into the attempt,
    // while a loaded engine may still be creating it): kill the worker once its task's container is up.
    await waitFor('its container running', async () => (await leftover()).some((c) => c.State === 'running'), 30_000);
    w1.child.kill('SIGKILL');
    await w1.exited;
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
      // Down until gitjobs has noticed and is trying to reconnect.
      await waitFor('gitjobs retrying the broker', async () => stack.logs().includes('RabbitMQ still unreachable'), 30_000);
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

  it.each(['process', 'docker'] as const)('gitjobs up killed with SIGKILL again and again at random moments of a busy run (%s): every task ends once, fsck stays clean', async (executor) => {
    const h = home();
    const p = prefix();
    const env = { GITJOBS_HEARTBEAT: '500ms', GITJOBS_EXECUTOR: executor };
    // A container task costs ten times a process: fewer of them keep the docker case within its time.
    const tasks = executor === 'process' ? 200 : 100;
    let server = track(await startUp(h, p, 4, env));
    // A process task is so quick that the whole run could end between two kills (reading the run to see how far
    // it is takes a fraction of a second on a slow machine); a sleep keeps it going while the kills land.
    const cmd = (i: number) => (executor === 'process' ? `sleep 0.2; echo t${i}` : `echo t${i}`);
    const commit = await pushTo(server.url, 'projects/storm.json', { tasks: Array.from({ length: tasks }, (_, i) => ({ id: `t${i}`, run: cmd(i) })) });
    const runId = runIdFor('projects/storm.json', commit);
    const gitdir = path.join(h, 'repos', 'tache_suivi.git');
    const kills: number[] = [];
    // Each restart with Docker costs seconds (orphaned containers reaped, images checked): fewer kills there.
    for (let k = 0; k < (executor === 'process' ? 6 : 4); k++) {
      // Kills spread over the run by its progress, each some transitions after the last, then at a random moment
      // inside a group of commits being written (the run commits a few hundred a second).
      const target = (kills.at(-1) ?? 0) + Math.floor((tasks / 15) * (1 + Math.random()));
      await waitFor(`the run past transition ${target}`, async () => {
        const r = await readRun(h, runId);
        return r !== undefined && (r.log.length >= target || r.run.doneCommit !== undefined);
      });
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 80)));
      server.child.kill('SIGKILL');
      await server.exited;
      kills.push((await readRun(h, runId))?.log.length ?? 0);
      const fsck = spawnSync('git', ['--git-dir', gitdir, 'fsck', '--strict', '--full'], { encoding: 'utf8' });
      expect(fsck.status, fsck.stderr).toBe(0);
      expect(fsck.stdout + fsck.stderr).not.toMatch(/error|missing|broken|corrupt/i);
      if ((await readRun(h, runId))?.run.doneCommit) break;
      server = track(await startUp(h, p, 4, env));
    }
    if (server.child.exitCode !== null || server.child.signalCode !== null) server = track(await startUp(h, p, 4, env));
    const view = await finishedRun(h, runId, 180_000);
    expect(view.run.state).toBe('succeeded');
    expect(await resultText(h, runId)).toBe(Array.from({ length: tasks }, (_, i) => `t${i}\n`).join(''));
    checkStory(view);
    // Killed while the run went on, not before it began or after it ended.
    expect(kills.filter((n) => n > 2 && n < 2 + 2 * tasks).length).toBeGreaterThanOrEqual(3);
    expect(spawnSync('git', ['--git-dir', gitdir, 'fsck', '--strict', '--full']).status).toBe(0);
  }, 300_000);

  it.each(['process', 'docker'] as const)('gitjobs up restarted while a worker elsewhere runs a task (%s): the task runs once, not again from recovery', async (executor) => {
    const h = home();
    const p = prefix();
    const fast = { GITJOBS_HEARTBEAT: '500ms' };
    let server = track(await startUp(h, p, 0, fast));
    const executions = executionCounter(executor, h);
    track(await gitjobs(['worker', '--executor', executor, '--workers', '2', '--cache', path.join(h, 'w1')], { GITJOBS_QUEUE_PREFIX: p, ...fast }, /taking tasks from/));
    const commit = await pushTo(server.url, 'projects/once.json', { tasks: [{ id: 'once', run: `${executions.mark}; sleep 4; echo done` }] });
    const runId = runIdFor('projects/once.json', commit);
    await waitFor('running', async () => (await readRun(h, runId))?.tasks[0]!.state === 'running');
    server.child.kill('SIGKILL');
    await server.exited;
    server = track(await startUp(h, p, 0, fast));
    const view = await finishedRun(h, runId);
    expect(view.run.state).toBe('succeeded');
    // The worker's second slot was free: a copy queued by recovery would have run beside the first.
    expect(await executions.count(runId)).toBe(1);
    expect(view.log).toEqual([`${runId}: queued (1 task from projects/once.json)`, `${runId}: published (1 TODO message confirmed by the broker)`, expect.stringMatching(new RegExp(`^${runId}/once: queued -> running `)), expect.stringMatching(new RegExp(`^${runId}/once: running -> succeeded `)), expect.stringMatching(new RegExp(`^${runId}: running -> succeeded`))]);
  });

  it('a scheduled project file pushed with git runs at each tick; ticks missed while up was down run once when it is back', async () => {
    const h = home();
    const p = prefix();
    let server = track(await startUp(h, p, 1));
    await pushTo(server.url, 'projects/every2s.json', { schedule: '*/2 * * * * *', tasks: [{ id: 't', run: 'echo tick' }] });
    const tracking = path.join(h, 'repos', 'tache_suivi.git');
    /** The ticks scheduled runs were queued for, and how many of those runs succeeded. */
    const ticks = () => {
      const subjects = git(tracking, 'log', '--format=%s', 'main').split('\n');
      const queued = subjects.map((s) => /^(every2s-[0-9a-f]{7}\.t\w+): queued \(1 task from projects\/every2s\.json, scheduled for (\S+)\)$/.exec(s)).filter((m) => m !== null);
      const succeeded = queued.filter((m) => subjects.includes(`${m[1]}: running -> succeeded`) || subjects.some((s) => s.startsWith(`${m[1]}: running -> succeeded`) || s.startsWith(`${m[1]}: queued -> succeeded`)));
      return { at: queued.map((m) => Date.parse(m[2]!)).sort(), succeeded: succeeded.length };
    };
    await waitFor('the schedule recorded', async () => /^projects\/every2s\.json: scheduled "\*\/2 \* \* \* \* \*" \(UTC\), next run \S+$/m.test(git(tracking, 'log', '--format=%s', 'main')), 30_000);
    await waitFor('two scheduled runs to succeed', async () => ticks().succeeded >= 2, 60_000);
    server.child.kill('SIGKILL');
    await server.exited;
    const downAt = Date.now();
    await new Promise((r) => setTimeout(r, 7000));
    const lastBefore = Math.max(...ticks().at);
    server = track(await startUp(h, p, 1));
    // Three ticks were missed: one run for them (the last one missed), then the schedule goes on every two seconds.
    await waitFor('three runs after the restart', async () => ticks().at.filter((t) => t > lastBefore).length >= 3, 30_000);
    const [caughtUp, next, afterNext] = ticks().at.filter((t) => t > lastBefore) as [number, number, number];
    // Had each missed tick run, the first would be two seconds after the last before the kill.
    expect(caughtUp - lastBefore).toBeGreaterThanOrEqual(6000);
    expect(caughtUp).toBeGreaterThan(downAt);
    // (Two seconds apart, unless a loaded machine held the scheduler past a tick: then it ran the last one due.)
    for (const gap of [next - caughtUp, afterNext - next]) expect([2000, 4000]).toContain(gap);
    // Deleting the file ends the schedule.
    const dir = tmpdir('faults-unschedule');
    cleanups.push(() => rmTree(dir));
    await gitAsync(dir, 'clone', '-q', `${server.url}/git/tache_a_faire.git`, '.');
    git(dir, 'rm', '-q', 'projects/every2s.json');
    git(dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'Stop every2s');
    await gitAsync(dir, 'push', '-q', 'origin', 'main');
    await waitFor('the schedule to end', async () => /^projects\/every2s\.json: schedule ended \(deleted in [0-9a-f]{7}\)$/m.test(git(tracking, 'log', '--format=%s', 'main')), 30_000);
    const count = ticks().at.length;
    await new Promise((r) => setTimeout(r, 4500));
    expect(ticks().at.length).toBe(count);
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
      expect(view.log).toHaveLength(2 + 4 * 2 + 1);
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
    w1.child.kill('SIGTERM');
    expect(await w1.exited).toBe(0);
    // It stopped after its grace, not after its tasks: they are still running in tracking, and end on the next worker.
    expect((await readRun(h, runId))!.tasks.map((t) => t.state)).toEqual(['running', 'running']);
    track(await startWorker(p, path.join(h, 'w2'), 2));
    const view = await finishedRun(h, runId);
    expect(view.run.state).toBe('succeeded');
    expect(await resultText(h, runId)).toBe(expected(2));
    checkStory(view);
    expect(view.log.filter((s) => / running -> running \(attempt 1\/1 redelivered/.test(s))).toHaveLength(2);
  });

  describe('tasks longer than the broker lets a delivery stay unacked', () => {
    /** A setting of the shared broker as it is now: `{ok,1800000}`, or `undefined` when it was never set. */
    const brokerEnv = (key: string) => execFileSync('rabbitmqctl', ['eval', `application:get_env(rabbit, ${key}).`], { encoding: 'utf8' }).trim();
    const setBrokerEnv = (key: string, value: string) => {
      const m = /^\{ok,(.*)\}$/.exec(value);
      execFileSync('rabbitmqctl', ['eval', m ? `application:set_env(rabbit, ${key}, ${m[1]}).` : `application:unset_env(rabbit, ${key}).`], { stdio: 'ignore' });
    };

    it.each(['process', 'docker'] as const)('run once with a lease (acked at start, heartbeats), where holding the message would run them twice (%s)', async (executor) => {
      // The broker is shared: what it had is put back afterwards, whatever it was.
      const found = { consumer_timeout: brokerEnv('consumer_timeout'), channel_tick_interval: brokerEnv('channel_tick_interval') };
      cleanups.push(() => Object.entries(found).forEach(([key, value]) => setBrokerEnv(key, value)));
      setBrokerEnv('consumer_timeout', '{ok,2000}');
      setBrokerEnv('channel_tick_interval', '{ok,500}');
      const h = home();
      const p = prefix();
      const server = track(await startUp(h, p, 0));
      const executions = executionCounter(executor, h);
      const project = () => ({ tasks: [{ id: 'long', run: `${executions.mark}; sleep 6; echo done`, timeout: '60s' }] });
      // Told the broker's real timeout: the task is leased and runs once.
      const leased = track(
        await gitjobs(['worker', '--executor', executor, '--consumer-timeout', '2s', '--cache', path.join(h, 'w1')], { GITJOBS_QUEUE_PREFIX: p, GITJOBS_HEARTBEAT: '500ms' }, /taking tasks from/),
      );
      if (executor === 'process') expect(leased.output()).toContain('NO sandbox');
      let commit = await pushTo(server.url, 'projects/leased.json', project());
      let runId = runIdFor('projects/leased.json', commit);
      let view = await finishedRun(h, runId);
      expect(view.run.state).toBe('succeeded');
      expect(await executions.count(runId)).toBe(1);
      expect(view.log.filter((s) => / running -> running /.test(s))).toHaveLength(0);
      checkStory(view);
      leased.child.kill('SIGTERM');
      await leased.exited;

      // Not told (it thinks the broker waits 30 minutes): the broker takes the delivery back and it runs again.
      track(await gitjobs(['worker', '--executor', executor, '--cache', path.join(h, 'w2')], { GITJOBS_QUEUE_PREFIX: p }, /taking tasks from/));
      commit = await pushTo(server.url, 'projects/held.json', project());
      runId = runIdFor('projects/held.json', commit);
      view = await finishedRun(h, runId);
      expect(await executions.count(runId)).toBeGreaterThanOrEqual(2);
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
      const b = track(await up());
      const w1 = track(await gitjobs(['worker', '--workers', '2', '--consumer-timeout', '2s', '--cache', path.join(h, 'w1')], env, /taking tasks from/));
      const long = (id: string) => ({ id, run: `sleep 4; echo ${id}`, timeout: '60s' });
      const commit = await pushTo(a.match[1]!, 'projects/two.json', { retries: 1, tasks: [long('x'), long('y')] });
      const runId = runIdFor('projects/two.json', commit);
      await waitFor('both running', async () => (await readRun(h, runId))?.tasks.every((t) => t.state === 'running'));
      // The survivor holds both attempts by the heartbeats it hears (its metrics say so).
      await waitFor('the survivor holding both leases', async () => /^gitjobs_leases_held 2$/m.test(await (await fetch(`${b.match[1]!}/metrics`)).text()));
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
      const base = { v: 1 as const, run: runId, task: 'a', attempt: 1, host: a.worker!.host, worker: a.worker!.id, image: a.worker!.image, at: new Date().toISOString() };
      const finished = { ...base, kind: 'finished' as const, exitCode: 0, durationMs: 10, timedOut: false, stdout: 'a\n', output: 'a\n', truncated: false };
      for (const e of [{ ...base, kind: 'started' as const }, finished, finished]) await stack.running.queue.publish('done', e);
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
      const subjects = async () => (await stack.running.store.log('tache_suivi')).map((c) => c.message.split('\n')[0]!).filter((s) => s.startsWith(runId)).reverse();
      // What the two killed tasks printed is kept, once each, when their workers report it.
      const log = await waitFor('the killed tasks’ output kept', async () => {
        const l = await subjects();
        return l.filter(keptOutput).length === 2 && l;
      });
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

describe('several workers on one broker', () => {
  const one = ['worker', '--workers', '1', '--executor', 'process'];
  it('share long tasks: a worker takes only what it can run, so none waits behind another worker’s running task', async () => {
    const h = home();
    const p = prefix();
    const server = track(await startUp(h, p, 0));
    const w1 = track(await gitjobs([...one, '--cache', path.join(h, 'w1')], { GITJOBS_QUEUE_PREFIX: p }, /taking tasks from/));
    const w2 = track(await gitjobs([...one, '--cache', path.join(h, 'w2'), '--read-ahead', '0'], { GITJOBS_QUEUE_PREFIX: p }, /taking tasks from/));
    expect(w1.output()).toContain(`gitjobs worker is taking tasks from ${p}.TODO, 1 at a time. Ctrl-C stops.`);
    // Long and short tasks in turn. Each worker holding four messages took t0, t2, t4, t6 (every long one) or none.
    const tasks = Array.from({ length: 8 }, (_, i) => ({ id: `t${i}`, run: i % 2 ? `echo t${i}` : `sleep 3; echo t${i}` }));
    const commit = await pushTo(server.url, 'projects/share.json', { tasks });
    const runId = runIdFor('projects/share.json', commit);
    const view = await finishedRun(h, runId);
    expect(view.run.state).toBe('succeeded');
    expect(await resultText(h, runId)).toBe(expected(8));
    checkStory(view);
    const longOn = (pid: number) => view.tasks.filter((t) => Number(t.id.slice(1)) % 2 === 0 && t.worker?.id?.endsWith(`:${pid}`)).map((t) => t.id);
    expect(longOn(w1.child.pid!)).toHaveLength(2);
    expect(longOn(w2.child.pid!)).toHaveLength(2);
  });

  it('a task that came to a worker busy with a leased one goes back within three heartbeats, and a worker with a free slot runs it', async () => {
    const h = home();
    const p = prefix();
    const server = track(await startUp(h, p, 0));
    const env = { GITJOBS_QUEUE_PREFIX: p, GITJOBS_HEARTBEAT: '500ms' };
    track(await gitjobs([...one, '--cache', path.join(h, 'w1')], env, /taking tasks from/));
    // Allowed 20 min, past half the 30 min consumer timeout: leased, so the worker acks `long` when it starts,
    // which leaves it room for `short`, that it cannot start.
    const commit = await pushTo(server.url, 'projects/busy.json', { timeout: '20m', tasks: [{ id: 'long', run: 'sleep 10; echo long' }, { id: 'short', run: 'echo short' }] });
    const runId = runIdFor('projects/busy.json', commit);
    const task = async (id: string) => (await readRun(h, runId))?.tasks.find((t) => t.id === id);
    await waitFor('long running', async () => (await task('long'))?.state === 'running');
    const w2 = track(await gitjobs([...one, '--cache', path.join(h, 'w2')], env, /taking tasks from/));
    // Given back after 1.5 s (not 7.5 min, a quarter of the consumer timeout): the second worker runs it.
    const short = await waitFor('short done', async () => ((await task('short'))?.state === 'succeeded' ? task('short') : undefined), 30_000);
    expect(short!.worker?.id?.endsWith(`:${w2.child.pid}`)).toBe(true);
    expect((await task('long'))!.state).toBe('running');
    const view = await finishedRun(h, runId);
    expect(view.run.state).toBe('succeeded');
    checkStory(view);
  });
});
