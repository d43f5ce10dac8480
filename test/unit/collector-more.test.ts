/**
 * The collector's remaining corners, each found by a mutant: what observers
 * hear of cancellations and retries, a stopped collector, the recovery
 * summary whatever it holds, leases of runs tracking does not know, a store
 * that fails while a lost worker is recorded, a collector with no finish
 * hook, and abandons that must not be sent.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Collector } from '../../src/collector/collector.js';
import type { TaskEvent } from '../../src/core/channels.js';
import { runIdFor } from '../../src/core/ids.js';
import { runPaths } from '../../src/core/layout.js';
import type { CommitOptions, RunObserver } from '../../src/core/ports.js';
import { CONFIG_URL, harness, until, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const tasks = (runs: Record<string, string>, extra: object = {}) => JSON.stringify({ ...extra, tasks: Object.entries(runs).map(([id, run]) => ({ id, run })) });
const at = () => new Date(h.clock.now()).toISOString();
const abandons = () => h.queue.broadcasts.map((b) => b.message as { kind: string }).filter((m) => m.kind === 'abandon');

describe('observers', () => {
  it('hear cancellations and retries with their run and task', async () => {
    const changes: { run: string; task: string; state: string }[] = [];
    const observer: RunObserver = { taskChanged: (c) => changes.push({ run: c.run, task: c.task.id, state: c.task.state }) };
    h = await harness({ workers: 0, observer, settings: { retryBaseMs: 1000 } });
    const commit = await h.push({ 'projects/r.json': tasks({ x: 'exit 1' }, { retries: 1 }), 'projects/c.json': tasks({ y: 'true' }) });
    const [r, c] = ['r', 'c'].map((f) => runIdFor(`projects/${f}.json`, commit)) as [string, string];
    await h.collector.report({ v: 1, kind: 'finished', run: r, task: 'x', attempt: 1, host: 'h', image: 'i', at: at(), exitCode: 1, durationMs: 1, timedOut: false, stdout: '', output: '', truncated: false });
    await h.collector.cancel(c, 'stop');
    await h.idle();
    expect(changes).toEqual([
      { run: r, task: 'x', state: 'running' },
      { run: r, task: 'x', state: 'failed' },
      { run: r, task: 'x', state: 'queued' },
      { run: c, task: 'y', state: 'cancelled' },
    ]);
  });
});

describe('a stopped collector', () => {
  it('takes no more reports', async () => {
    h = await harness({ workers: 0 });
    const commit = await h.push({ 'projects/p.json': tasks({ a: 'true' }) });
    await h.collector.stop();
    await h.queue.publish('done', { v: 1, kind: 'started', run: runIdFor('projects/p.json', commit), task: 'a', attempt: 1, host: 'h', image: 'i', at: at() });
    await h.idle();
    expect(h.queue.peek('done')).toHaveLength(1);
  });
});

describe('the recovery summary', () => {
  it('is logged when a run only needed its result, and names that run in the lines of its finish', async () => {
    h = await harness({ workers: 0 });
    const commit = await h.push({ 'projects/p.json': tasks({ a: 'true' }) });
    const id = runIdFor('projects/p.json', commit);
    const v = (await h.run(id))!;
    await h.store.commit('tache_suivi', { changes: [{ path: runPaths(v.run).taskFile('a'), content: JSON.stringify({ ...v.tasks[0]!, state: 'succeeded', attempts: 1, exitCode: 0 }) }], message: 'done elsewhere\n' });
    const fresh = new Collector({ store: h.store, queue: h.queue, settings: h.settings, configUrl: CONFIG_URL, log: h.log, clock: h.clock });
    expect(await fresh.recover()).toEqual({ republished: 0, held: 0, watched: 0, completed: 1, requeued: 0 });
    expect(h.log.lines.find((l) => l.msg === 'recovered unfinished runs from tracking')).toMatchObject({ completed: 1 });
    expect(h.log.lines.find((l) => l.msg === 'run finished')).toMatchObject({ run: id, state: 'succeeded' });
    // No finish hook was given to this collector: the run finishes all the same.
    expect((await h.run(id))!.run.state).toBe('succeeded');
  });
  it('is logged when a run only needed a retry queued', async () => {
    h = await harness({ workers: 0 });
    const commit = await h.push({ 'projects/p.json': tasks({ a: 'exit 1' }, { retries: 1 }) });
    const id = runIdFor('projects/p.json', commit);
    const v = (await h.run(id))!;
    await h.store.commit('tache_suivi', { changes: [{ path: runPaths(v.run).taskFile('a'), content: JSON.stringify({ ...v.tasks[0]!, state: 'failed', attempts: 1, exitCode: 1 }) }], message: 'failed elsewhere\n' });
    const fresh = new Collector({ store: h.store, queue: h.queue, settings: h.settings, configUrl: CONFIG_URL, log: h.log, clock: h.clock });
    expect(await fresh.recover()).toEqual({ republished: 0, held: 0, watched: 0, completed: 0, requeued: 1 });
    expect(h.log.lines.find((l) => l.msg === 'recovered unfinished runs from tracking')).toMatchObject({ requeued: 1 });
  });
  it('is logged when queued first attempts were only held, or running ones only watched', async () => {
    h = await harness({ workers: 0 });
    await h.push({ 'projects/p.json': tasks({ a: 'true' }) });
    expect(await h.collector.recover()).toMatchObject({ held: 1, republished: 0, watched: 0 });
    expect(h.log.lines.filter((l) => l.msg === 'recovered unfinished runs from tracking')).toHaveLength(1);
    const commit = (await h.store.head('tache_a_faire'))!;
    const id = runIdFor('projects/p.json', commit);
    await h.collector.report({ v: 1, kind: 'started', run: id, task: 'a', attempt: 1, host: 'h', worker: 'h:1', image: 'i', at: at() });
    const fresh = new Collector({ store: h.store, queue: h.queue, settings: h.settings, configUrl: CONFIG_URL, log: h.log, clock: h.clock });
    expect(await fresh.recover()).toEqual({ republished: 0, held: 0, watched: 1, completed: 0, requeued: 0 });
    expect(h.log.lines.filter((l) => l.msg === 'recovered unfinished runs from tracking')).toHaveLength(2);
    await fresh.stop();
  });
});

describe('leases', () => {
  it('of a run tracking does not know lapse quietly', async () => {
    h = await harness({ workers: 0, settings: { consumerTimeoutMs: 10_000, heartbeatMs: 1000 } });
    await h.collector.report({ v: 1, kind: 'started', run: 'ghost-1234567', task: 'a', attempt: 1, host: 'h', worker: 'h:1', image: 'i', at: at(), leaseMs: 1000 });
    await h.clock.advance(3000);
    expect(h.log.lines.filter((l) => l.level === 'error')).toEqual([]);
  });
  it('of a lost worker are recorded with an output that was not cut, and a store failure while recording is logged', async () => {
    h = await harness({ workers: 0, settings: { consumerTimeoutMs: 10_000, heartbeatMs: 1000 } });
    const commit = await h.push({ 'projects/p.json': tasks({ a: 'true', b: 'true' }, { timeout: '60s' }) });
    const id = runIdFor('projects/p.json', commit);
    const base = { v: 1 as const, run: id, attempt: 1, host: 'h', worker: 'h:1', image: 'i', at: at(), leaseMs: 1000 };
    await h.collector.report({ ...base, kind: 'started', task: 'a' });
    await h.clock.advance(2000);
    await until(h, 'a lost', async () => (await h.run(id))!.tasks[0]!.state === 'failed');
    expect((await h.run(id))!.tasks[0]).toMatchObject({ outputTruncated: false, timedOut: false });
    const stage = h.store.stage.bind(h.store);
    h.store.stage = async (repo: string, options: CommitOptions) => {
      if (/worker lost/.test(options.message)) throw new Error('disk full');
      return stage(repo, options);
    };
    await h.collector.report({ ...base, kind: 'started', task: 'b', at: at() });
    await h.clock.advance(2000);
    await until(h, 'logged', () => h.log.lines.find((l) => l.msg === 'could not record a lost worker'));
    expect(h.log.lines.find((l) => l.msg === 'could not record a lost worker')).toMatchObject({ level: 'error', err: 'disk full', run: id, task: 'b', attempt: 1 });
  });
});

describe('abandons', () => {
  it('go to no worker for a duplicate finish, nor for a fresh start of a later attempt than the one running', async () => {
    h = await harness({ workers: 0 });
    const commit = await h.push({ 'projects/p.json': tasks({ a: 'true', b: 'true' }, { retries: 2 }) });
    const id = runIdFor('projects/p.json', commit);
    const fin = (task: string, worker: string): TaskEvent => ({ v: 1, kind: 'finished', run: id, task, attempt: 1, host: 'h', worker, image: 'i', at: at(), exitCode: 0, durationMs: 1, timedOut: false, stdout: '', output: '', truncated: false });
    await h.collector.report(fin('a', 'h1:1'));
    await h.collector.report(fin('a', 'h2:2'));
    await h.collector.report({ v: 1, kind: 'started', run: id, task: 'b', attempt: 1, host: 'h1', worker: 'h1:1', image: 'i', at: at() });
    await h.collector.report({ v: 1, kind: 'started', run: id, task: 'b', attempt: 2, host: 'h3', worker: 'h3:3', image: 'i', at: at(), redelivered: false });
    await h.idle();
    expect(abandons()).toEqual([]);
  });
});
