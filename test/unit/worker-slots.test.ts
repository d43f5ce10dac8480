/**
 * A worker's waiting room and its output: slots taken in order and given up
 * when a wait is aborted; attempts waiting for a slot that are cancelled,
 * abandoned or wait too long; output flushed early when it grows; the
 * worker's log lines.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../src/core/channels.js';
import { Slots } from '../../src/worker/slots.js';
import { Worker } from '../../src/worker/worker.js';
import { harness, todo, until, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const reports = () => h.queue.peek('done') as TaskEvent[];

describe('slots', () => {
  it('give a slot at once while one is free, then in the order asked, and count the busy ones', async () => {
    const slots = new Slots(2);
    const a = (await slots.acquire()) as () => void;
    const b = (await slots.acquire()) as () => void;
    expect(slots.busy).toBe(2);
    const order: string[] = [];
    const c = slots.acquire().then((r) => (order.push('c'), r as () => void));
    const d = slots.acquire().then((r) => (order.push('d'), r as () => void));
    a();
    a(); // a second release of the same slot gives nothing more
    const releaseC = await c;
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['c']);
    b();
    const releaseD = await d;
    expect(order).toEqual(['c', 'd']);
    expect(slots.busy).toBe(2);
    releaseC();
    releaseD();
    expect(slots.busy).toBe(0);
  });
  it('give up a wait when its signal aborts, leaving the others their turn', async () => {
    const slots = new Slots(1);
    const held = (await slots.acquire()) as () => void;
    const ac = new AbortController();
    const given = slots.acquire(ac.signal);
    const next = slots.acquire();
    ac.abort();
    expect(await given).toBe(false);
    held();
    const r = await next;
    expect(typeof r).toBe('function');
    expect(slots.busy).toBe(1);
    (r as () => void)();
    expect(slots.busy).toBe(0);
    // An abort after the slot was given changes nothing.
    const late = new AbortController();
    const got = await slots.acquire(late.signal);
    late.abort();
    expect(slots.busy).toBe(1);
    (got as () => void)();
  });
});

describe('a worker’s waiting attempts', () => {
  it('are dropped unrun when their run is cancelled or tracking settled them, and given back when they wait too long', async () => {
    // Read ahead: it holds three messages beyond its one slot.
    h = await harness({ collector: false, concurrency: 1, settings: { consumerTimeoutMs: 40_000, readAhead: 3 } });
    await h.queue.publish('todo', todo('a', ['sleep', '1000'], { run: 'busy-1234567' }));
    await until(h, 'a running', () => h.executor.running === 1);
    await h.queue.publish('todo', todo('b', ['true'], { run: 'gone-1234567' }));
    await h.queue.publish('todo', todo('c', ['true'], { run: 'dup-12345678' }));
    await h.queue.publish('todo', todo('d', ['true'], { run: 'wait-1234567' }));
    await until(h, 'all held', () => h.queue.depth('todo') === 0);
    await h.queue.broadcast('control', { kind: 'cancel', run: 'gone-1234567' });
    await h.queue.broadcast('control', { kind: 'abandon', run: 'dup-12345678', task: 'c', attempt: 1, worker: h.workers[0]!.id });
    await h.idle();
    const msgs = () => h.log.lines.map((l) => [l.msg, l.task]);
    expect(msgs()).toContainEqual(['run was cancelled; task dropped unrun', 'b']);
    expect(msgs()).toContainEqual(['a duplicate copy of an attempt that tracking has settled; dropped unrun', 'c']);
    // d waits a quarter of the consumer timeout (10 s) for its slot, then is given back: published again and its
    // delivery acked (not returned: a broker may count returns against a delivery limit); it comes again, a new
    // message. a ends at its 60 s timeout, and d then runs.
    await h.clock.advance(10_000);
    await until(h, 'd given back', () => h.log.lines.some((l) => l.msg === 'no slot free in time; task given back for another worker' && l.task === 'd'));
    for (let i = 0; i < 51; i++) await h.clock.advance(1000);
    await until(h, 'd finished', () => reports().find((e) => e.kind === 'finished' && e.task === 'd'));
    // (Its timeout passes half the consumer timeout: it is leased, so its start is reported at once, with the delivery's flag.)
    expect(reports().find((e) => e.kind === 'started' && e.task === 'd')).toMatchObject({ redelivered: false, leaseMs: 30_000 });
    expect(h.executor.started.map((r) => r.labels['io.gitjobs.task-id'])).toEqual(['a', 'd']);
    expect(reports().filter((e) => e.kind === 'finished').map((e) => e.task)).toEqual(['a', 'd']);
    // A later message of the cancelled run is dropped at once.
    await h.queue.publish('todo', todo('b2', ['true'], { run: 'gone-1234567' }));
    await until(h, 'b2 dropped', () => h.log.lines.some((l) => l.msg === 'run was cancelled; task dropped unrun' && l.task === 'b2'));
  });
  it('without read-ahead, one that came while a leased attempt runs (acked at its start) goes back after three heartbeats, to a worker with a free slot', async () => {
    // Half the consumer timeout is 15 min: a task allowed 20 min is leased.
    h = await harness({ collector: false, concurrency: 1 });
    const long = { timeoutMs: 20 * 60_000 };
    await h.queue.publish('todo', todo('a', ['sleep', '3600'], long));
    await until(h, 'a running', () => h.executor.running === 1);
    await h.queue.publish('todo', todo('b', ['sleep', '3600'], long));
    await until(h, 'b held', () => h.queue.depth('todo') === 0);
    const h2 = await h.startWorker(1);
    const start = h.clock.now();
    await h.idle();
    expect(h.executor.running).toBe(1);
    // Given back after 30 s (three heartbeats of 10 s), not a quarter of the 30 min consumer timeout; the
    // broker may hand it to the first worker again (it has room), which gives it back 30 s later.
    await h.clock.advance(29_000);
    expect(h.executor.running).toBe(1);
    await until(h, 'b running on the second worker', () => h.executor.running === 2, { advanceMs: 1000, steps: 40 });
    expect(h.clock.now() - start).toBeLessThanOrEqual(61_000);
    const on = new Map(h.executor.started.map((r) => [r.labels['io.gitjobs.task-id'], r.labels['io.gitjobs.worker-host']]));
    expect([on.get('a'), on.get('b')]).toEqual(['h1', h2.host]);
  });
  it('send their output early once it passes 64 KiB, numbered in order', async () => {
    h = await harness({ collector: false, programs: { flood: async (_a, io) => { io.out('x'.repeat(70 * 1024)); io.out('y'); await io.sleep(100_000); return 0; } } });
    await h.queue.publish('todo', todo('f', ['flood']));
    await until(h, 'running', () => h.executor.running === 1);
    await h.idle();
    const out = () => h.queue.broadcasts.filter((b) => b.fanout === 'output').map((b) => b.message as { seq: number; data: string });
    // Before any 250 ms tick: the first 70 KiB went at once.
    expect(out().map((m) => [m.seq, m.data.length])).toEqual([[0, 70 * 1024]]);
    await h.clock.advance(250);
    expect(out().map((m) => [m.seq, m.data])).toEqual([[0, 'x'.repeat(70 * 1024)], [1, 'y']]);
  });
  it('log the worker’s start and the grace period running out', async () => {
    h = await harness({ collector: false, concurrency: 3 });
    expect(h.log.lines).toContainEqual(expect.objectContaining({ level: 'info', msg: 'worker started', concurrency: 3, executor: 'memory', host: 'h1' }));
    await h.queue.publish('todo', todo('a', ['sleep', '100']));
    await until(h, 'running', () => h.executor.running === 1);
    const stopping = h.workers[0]!.stop(1000);
    await h.clock.advance(1000);
    await stopping;
    h.workers.splice(0);
    expect(h.log.lines).toContainEqual(expect.objectContaining({ level: 'warn', tasks: 1, graceMs: 1000 }));
  });
});

describe('an attempt gitjobs could not run', () => {
  it('is reported failed with the executor’s error, as its whole output, on the executor’s image name', async () => {
    h = await harness({ collector: false });
    const run = h.executor.run.bind(h.executor);
    let fail = true;
    h.executor.run = async (request) => {
      if (fail) {
        fail = false;
        throw new Error('no such program');
      }
      return run(request);
    };
    await h.queue.publish('todo', todo('x', ['true']));
    const end = await until(h, 'finished', () => reports().find((e) => e.kind === 'finished' && e.task === 'x'));
    expect(end).toMatchObject({ exitCode: null, durationMs: 0, timedOut: false, truncated: false, stdout: '', image: 'memory (unsandboxed)', error: 'memory executor: no such program', output: 'memory executor: no such program\n', redelivered: false });
    expect(h.log.lines.find((l) => l.msg === 'task could not run')).toMatchObject({ level: 'error', err: 'no such program', task: 'x' });
    // The slot it had is free again: the next attempt runs.
    await h.queue.publish('todo', todo('y', ['true']));
    await until(h, 'y finished', () => reports().find((e) => e.kind === 'finished' && e.task === 'y'));
    expect(reports().find((e) => e.kind === 'finished' && e.task === 'y')).toMatchObject({ exitCode: 0, image: 'memory (unsandboxed)' });
  });
  it('whose image does not build is reported with no duration and its error as output', async () => {
    h = await harness({ collector: false, broken: ['default'] });
    await h.queue.publish('todo', todo('b', ['true']));
    const end = await until(h, 'finished', () => reports().find((e) => e.kind === 'finished' && e.task === 'b'));
    expect(end).toMatchObject({ exitCode: null, durationMs: 0, timedOut: false, truncated: false, stdout: '', image: 'none' });
    expect((end as { output: string }).output).toBe(`${(end as { error: string }).error}\n`);
    expect(h.log.lines.find((l) => l.msg === 'could not prepare the worker image')).toMatchObject({ level: 'error', task: 'b' });
  });
  it('killed because tracking settled it says so in the log', async () => {
    h = await harness({ collector: false });
    await h.queue.publish('todo', todo('a', ['sleep', '100']));
    await until(h, 'running', () => h.executor.running === 1);
    await h.queue.broadcast('control', { kind: 'abandon', run: 'r-1234567', task: 'a', attempt: 1, worker: h.workers[0]!.id });
    await until(h, 'killed', () => h.log.lines.some((l) => l.msg === 'task killed: a duplicate copy of an attempt that tracking has settled'));
    expect(h.log.lines.some((l) => l.msg === 'task killed: its run was cancelled')).toBe(false);
  });
});

describe('a worker starting', () => {
  it('removes task containers a gone worker left on its host, says how many, and starts anyway when it cannot look', async () => {
    h = await harness({ collector: false, workers: 0 });
    const hosts: string[] = [];
    h.executor.reapOrphans = async (host: string) => {
      hosts.push(host);
      return 2;
    };
    await h.startWorker(1, 'box');
    expect(hosts).toEqual(['box']);
    expect(h.log.lines.find((l) => l.msg === 'removed task containers left behind by a worker that is gone')).toMatchObject({ level: 'warn', reaped: 2 });
    h.executor.reapOrphans = async () => 0;
    await h.startWorker(1, 'clean');
    expect(h.log.lines.filter((l) => l.msg === 'removed task containers left behind by a worker that is gone')).toHaveLength(1);
    h.executor.reapOrphans = async () => {
      throw new Error('docker is away');
    };
    await h.startWorker(1, 'blind');
    expect(h.log.lines.find((l) => l.msg === 'could not look for leftover task containers')).toMatchObject({ level: 'warn', err: 'docker is away' });
    expect(h.log.lines.filter((l) => l.msg === 'worker started').map((l) => l.host)).toEqual(['box', 'clean', 'blind']);
  });
  it('holds only the messages it can run, unless told to read ahead', async () => {
    h = await harness({ collector: false, concurrency: 2 });
    for (let i = 0; i < 12; i++) await h.queue.publish('todo', todo(`t${i}`, ['sleep', '100']));
    await until(h, 'running', () => h.executor.running === 2);
    await h.idle();
    expect(h.queue.depth('todo')).toBe(10);
    expect(h.log.lines).toContainEqual(expect.objectContaining({ msg: 'worker started', concurrency: 2, readAhead: 0 }));
    await h.stop();
    h = await harness({ collector: false, concurrency: 2, settings: { readAhead: 3 } });
    for (let i = 0; i < 12; i++) await h.queue.publish('todo', todo(`t${i}`, ['sleep', '100']));
    await until(h, 'running', () => h.executor.running === 2);
    await h.idle();
    // 2 running and 3 waiting for a slot: 5 taken from the queue, 7 left in it.
    expect(h.queue.depth('todo')).toBe(7);
  });
  it('share long tasks with another worker: none waits behind a running one while the other is idle', async () => {
    h = await harness({ collector: false, workers: 2, concurrency: 1 });
    const start = h.clock.now();
    // Long and short tasks in turn: a worker that held several would run every long one while the other idled.
    for (let i = 0; i < 8; i++) await h.queue.publish('todo', todo(`t${i}`, ['sleep', i % 2 ? '0.01' : '5']));
    const finished = () => reports().filter((e) => e.kind === 'finished');
    await until(h, 'all finished', () => finished().length === 8, { advanceMs: 50, steps: 1000 });
    const hostOf = new Map(h.executor.started.map((r) => [r.labels['io.gitjobs.task-id'], r.labels['io.gitjobs.worker-host']]));
    const longOn = (host: string) => ['t0', 't2', 't4', 't6'].filter((t) => hostOf.get(t) === host);
    expect(longOn('h1')).toHaveLength(2);
    expect(longOn('h2')).toHaveLength(2);
    // Two long tasks after each other on each worker: 10 s, not the 20 s of one worker running all four.
    expect(h.clock.now() - start).toBeLessThan(11_000);
  });
});

describe('the image an attempt reports', () => {
  it('is the prepared image for containers, and names the executor for the others', async () => {
    h = await harness({ collector: false });
    Object.defineProperty(h.executor, 'kind', { value: 'docker' });
    await h.queue.publish('todo', todo('c', ['true']));
    const end = await until(h, 'finished', () => reports().find((e) => e.kind === 'finished' && e.task === 'c'));
    expect((end as { image: string }).image).not.toMatch(/unsandboxed/);
    expect((end as { image: string }).image).toBe(await h.executor.prepare({ name: 'default', commit: 'c'.repeat(40), dir: '/config/workers/default' }));
  });
});

describe('a worker stopping', () => {
  it('says the grace period ran out only when attempts were still running, and can stop before it started', async () => {
    h = await harness({ collector: false, workers: 0 });
    const never = new Worker({ queue: h.queue, executor: h.executor, config: { worker: async (_u, commit, name) => ({ name, commit, dir: '/x' }) }, concurrency: 1, outputCap: 1024, log: h.log, clock: h.clock, host: 'n', lease: h.settings });
    await never.stop(0);
    const idle = await h.startWorker(1);
    const stopping = idle.stop(1000);
    await h.clock.advance(1000);
    await stopping;
    h.workers.splice(0);
    expect(h.log.lines.some((l) => l.level === 'warn' && /grace period/.test(l.msg))).toBe(false);
  });
  it('names the grace period and the attempts it gives back', async () => {
    h = await harness({ collector: false });
    await h.queue.publish('todo', todo('a', ['sleep', '100']));
    await until(h, 'running', () => h.executor.running === 1);
    const stopping = h.workers[0]!.stop(500);
    await h.clock.advance(500);
    await stopping;
    h.workers.splice(0);
    expect(h.log.lines.find((l) => l.level === 'warn')).toMatchObject({ msg: 'grace period over: requeueing the tasks still running', tasks: 1, graceMs: 500 });
    expect(h.executor.running).toBe(0);
  });
  it('ignores an abandon for an attempt it does not hold', async () => {
    h = await harness({ collector: false });
    await h.queue.broadcast('control', { kind: 'abandon', run: 'r-1234567', task: 'zz', attempt: 9, worker: h.workers[0]!.id });
    await h.queue.publish('todo', todo('a', ['true']));
    await until(h, 'finished', () => reports().find((e) => e.kind === 'finished' && e.task === 'a'));
  });
});

describe('output and shutdown details', () => {
  it('keeps exactly 64 KiB for the next tick, and sends what a task printed last before its end is reported', async () => {
    h = await harness({ collector: false, programs: { exact: async (_a, io) => { io.out('x'.repeat(64 * 1024)); await io.sleep(1000); io.out('last'); return 0; } } });
    await h.queue.publish('todo', todo('e', ['exact']));
    await until(h, 'running', () => h.executor.running === 1);
    await h.idle();
    const out = () => h.queue.broadcasts.filter((b) => b.fanout === 'output').map((b) => (b.message as { data: string }).data.length);
    expect(out()).toEqual([]);
    await h.clock.advance(250);
    expect(out()).toEqual([64 * 1024]);
    await h.clock.advance(750);
    await until(h, 'finished', () => reports().find((e) => e.kind === 'finished' && e.task === 'e'));
    expect(out()).toEqual([64 * 1024, 4]);
  });
  it('reports a leased attempt the executor could not run', async () => {
    h = await harness({ collector: false, settings: { consumerTimeoutMs: 10_000 } });
    h.executor.run = async () => {
      throw new Error('gone');
    };
    await h.queue.publish('todo', todo('l', ['true'], { timeoutMs: 60_000 }));
    const end = await until(h, 'finished', () => reports().find((e) => e.kind === 'finished' && e.task === 'l'));
    expect(end).toMatchObject({ error: 'memory executor: gone' });
    expect(reports().find((e) => e.kind === 'started' && e.task === 'l')).toMatchObject({ leaseMs: expect.any(Number) });
  });
  it('gives a running attempt back to the broker on shutdown, which marks it redelivered', async () => {
    h = await harness({ collector: false });
    await h.queue.publish('todo', todo('a', ['sleep', '100']));
    await until(h, 'running', () => h.executor.running === 1);
    const stopping = h.workers[0]!.stop(0);
    await h.clock.advance(1);
    await stopping;
    h.workers.splice(0);
    await h.startWorker(1);
    await h.clock.advance(200);
    await until(h, 'started again', () => reports().find((e) => e.kind === 'started' && e.task === 'a'));
    expect(reports().find((e) => e.kind === 'started' && e.task === 'a')).toMatchObject({ redelivered: true });
  });
  it('forgets the oldest of 10,000 cancelled runs, and drops the messages of the others', async () => {
    h = await harness({ collector: false, concurrency: 1 });
    for (let i = 0; i <= 10_000; i++) await h.queue.broadcast('control', { kind: 'cancel', run: `c${i}` });
    await h.idle();
    await h.queue.publish('todo', todo('old', ['true'], { run: 'c0' }));
    await h.queue.publish('todo', todo('kept', ['true'], { run: 'c1' }));
    await h.queue.publish('todo', todo('last', ['true'], { run: 'c10000' }));
    await until(h, 'old ran', () => reports().find((e) => e.kind === 'finished' && e.task === 'old'));
    await until(h, 'all taken', () => h.queue.depth('todo') === 0 && h.workers[0]!.busy === 0);
    expect(h.executor.started.map((r) => r.labels['io.gitjobs.task-id'])).toEqual(['old']);
  });
});
