/**
 * Reports the collector must take apart carefully: for runs or tasks it
 * does not know, copies of attempts from the wrong worker, the lease's
 * record of a lost worker, and heartbeats; each checked against exactly
 * what tracking and the CONTROL fanout receive.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../src/core/channels.js';
import { runIdFor } from '../../src/core/ids.js';
import { isSettled } from '../../src/collector/intake.js';
import { runPaths } from '../../src/core/layout.js';
import type { TaskRecord } from '../../src/core/task.js';
import { harness, until, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const tasks = (runs: Record<string, string>, extra: object = {}) => JSON.stringify({ ...extra, tasks: Object.entries(runs).map(([id, run]) => ({ id, run })) });

async function oneRun(extra: object = {}, runs: Record<string, string> = { a: 'sleep 1' }) {
  h = await harness({ workers: 0, settings: { consumerTimeoutMs: 10_000, heartbeatMs: 1000 } });
  const commit = await h.push({ 'projects/t.json': tasks(runs, extra) });
  return runIdFor('projects/t.json', commit);
}
const at = () => new Date(h.clock.now()).toISOString();
const abandons = () => h.queue.broadcasts.map((b) => b.message as { kind: string }).filter((m) => m.kind === 'abandon');

describe('reports', () => {
  it('for a run or a task tracking does not know are dropped with a warning, committing nothing', async () => {
    const id = await oneRun();
    const before = (await h.store.log('tache_suivi')).length;
    const base = { v: 1 as const, attempt: 1, host: 'h1', image: 'i', at: at() };
    await h.collector.report({ ...base, kind: 'started', run: 'ghost-1234567', task: 'a' });
    await h.collector.report({ ...base, kind: 'started', run: id, task: 'ghost' });
    expect((await h.store.log('tache_suivi')).length).toBe(before);
    expect(h.log.lines.filter((l) => l.level === 'warn').map((l) => [l.msg, l.run, l.task])).toEqual([
      ['event for a run that tracking does not know; dropped', 'ghost-1234567', 'a'],
      ['event for a task that the run does not have; dropped', id, 'ghost'],
    ]);
  });

  it('from a worker that is not recorded, of an attempt already running, send no abandon when the copy was redelivered', async () => {
    const id = await oneRun();
    const base = { v: 1 as const, run: id, task: 'a', attempt: 1, image: 'i', at: at() };
    await h.collector.report({ ...base, kind: 'started', host: 'h1', worker: 'h1:1' });
    // Its own worker again: nothing.
    await h.collector.report({ ...base, kind: 'started', host: 'h1', worker: 'h1:1', redelivered: false });
    // A start with no worker named cannot be told anything.
    await h.collector.report({ ...base, kind: 'started', host: 'h3' });
    await h.idle();
    expect(abandons()).toEqual([]);
  });

  it('of a fresh start of a later attempt, or from a worker when tracking recorded none, send no abandon', async () => {
    const id = await oneRun({ retries: 2 });
    const base = { v: 1 as const, run: id, task: 'a', image: 'i', at: at() };
    // Running at attempt 1 on a worker that did not name itself.
    await h.collector.report({ ...base, attempt: 1, kind: 'started', host: 'h1' });
    await h.collector.report({ ...base, attempt: 1, kind: 'started', host: 'h2', worker: 'h2:2', redelivered: false });
    // A fresh copy of attempt 2 while attempt 1 runs: not a copy of the running attempt.
    await h.collector.report({ ...base, attempt: 2, kind: 'started', host: 'h3', worker: 'h3:3', redelivered: false });
    await h.idle();
    expect(abandons()).toEqual([]);
    expect((await h.run(id))!.tasks[0]).toMatchObject({ state: 'running', attempts: 1, worker: { host: 'h1' } });
  });

  it('of a start for an attempt still queued but later than the next one are ignored without an abandon to a worker that named none', async () => {
    const id = await oneRun({ retries: 2 });
    await h.collector.report({ v: 1, kind: 'started', run: id, task: 'a', attempt: 3, host: 'h1', image: 'i', at: at() });
    await h.idle();
    expect(abandons()).toEqual([]);
    expect((await h.run(id))!.tasks[0]!.state).toBe('queued');
  });

  it('heartbeats extend a lease but are never committed', async () => {
    const id = await oneRun({ timeout: '60s' });
    const before = (await h.store.log('tache_suivi')).length;
    const base = { v: 1 as const, run: id, task: 'a', attempt: 1, host: 'h1', worker: 'h1:1', image: 'i', at: at() };
    await h.collector.report({ ...base, kind: 'heartbeat' });
    expect((await h.store.log('tache_suivi')).length).toBe(before);
    expect(h.collector.leasesHeld).toBe(0);
    await h.collector.report({ ...base, kind: 'started', leaseMs: 3000 });
    expect(h.collector.leasesHeld).toBe(1);
    await h.collector.report({ ...base, kind: 'finished', exitCode: 0, durationMs: 5, timedOut: false, stdout: '', output: '', truncated: false });
    expect(h.collector.leasesHeld).toBe(0);
    // A heartbeat after the finish does not hold the attempt again.
    await h.collector.report({ ...base, kind: 'heartbeat', leaseMs: 3000 });
    expect(h.collector.leasesHeld).toBe(0);
  });

  it('of a lost worker record its host, image and id, and say whose heartbeats stopped', async () => {
    const id = await oneRun({ timeout: '60s' });
    await h.queue.take('todo');
    const started: TaskEvent = { v: 1, kind: 'started', run: id, task: 'a', attempt: 1, host: 'far', worker: 'far:9', image: 'sha256:x', at: at(), leaseMs: 2000 };
    await h.collector.report(started);
    await h.clock.advance(3000);
    await until(h, 'lost', async () => (await h.run(id))!.tasks[0]!.state === 'failed', { advanceMs: 500 });
    const t = (await h.run(id))!.tasks[0]!;
    expect(t).toMatchObject({ state: 'failed', exitCode: null, timedOut: false, worker: { host: 'far', image: 'sha256:x', id: 'far:9' } });
    expect(t.error).toMatch(/^worker lost: no heartbeat from far:9 for 2\.00s$/);
    const view = (await h.run(id))!;
    const head = (await h.store.head('tache_suivi'))!;
    expect(await h.store.readFile('tache_suivi', head, runPaths(view.run).logFile('a'))).toBe(`${t.error}\n`);
    expect(await h.store.readFile('tache_suivi', head, runPaths(view.run).stdoutFile('a'))).toBe('');
  });
});

describe('isSettled', () => {
  const t = (state: TaskRecord['state'], attempts: number, maxAttempts = 3) => ({ state, attempts, maxAttempts }) as TaskRecord;
  it('is true once the task is final, past the attempt, or at it but no longer running', () => {
    expect(isSettled(t('succeeded', 1), 1)).toBe(true);
    expect(isSettled(t('running', 2), 1)).toBe(true);
    expect(isSettled(t('running', 2), 2)).toBe(false);
    expect(isSettled(t('queued', 2), 2)).toBe(true);
    expect(isSettled(t('failed', 2), 2)).toBe(true);
    expect(isSettled(t('queued', 1), 2)).toBe(false);
    expect(isSettled(t('running', 1), 2)).toBe(false);
  });
});
