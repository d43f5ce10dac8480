import { afterEach, describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../src/core/channels.js';
import { harness, todo, until, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());


/** The worker alone: no collector takes DONE, so the test reads what the worker reported. */
async function workerOnly(options: Parameters<typeof harness>[0] = {}) {
  return harness({ ...options, collector: false });
}

const reports = () => h.queue.peek('done') as TaskEvent[];
const finished = (task: string) => reports().find((e) => e.kind === 'finished' && e.task === task) as Extract<TaskEvent, { kind: 'finished' }> | undefined;

describe('worker', () => {
  it('runs an attempt that ends at once and reports its start with its end, in one message, then acks the TODO message', async () => {
    h = await workerOnly();
    await h.queue.publish('todo', todo('a', ['sh', '-c', 'echo hello; echo oops >&2; exit 3']));
    const end = await until(h, 'finished', () => finished('a'));
    expect(reports().map((e) => e.kind)).toEqual(['finished']);
    expect(end).toMatchObject({ run: 'r-1234567', task: 'a', attempt: 1, host: 'h1', image: 'memory (unsandboxed)', worker: `h1:${process.pid}`, startedAt: new Date(h.clock.now()).toISOString(), redelivered: false });
    expect(end).toMatchObject({ exitCode: 3, stdout: 'hello\n', output: 'hello\noops\n', timedOut: false, truncated: false });
    expect(h.queue.depth('todo')).toBe(0);
    expect(h.workers[0]!.busy).toBe(0);
  });

  it('reports started once an attempt has run for 100 ms, and finished after it', async () => {
    h = await workerOnly();
    await h.queue.publish('todo', todo('slow', ['sleep', '1']));
    await until(h, 'running', () => h.executor.running === 1);
    await h.clock.advance(99);
    expect(reports()).toEqual([]);
    await h.clock.advance(1);
    expect(reports()).toEqual([expect.objectContaining({ kind: 'started', task: 'slow', redelivered: false, at: new Date(h.clock.now() - 100).toISOString() })]);
    await h.clock.advance(900);
    const end = await until(h, 'finished', () => finished('slow'));
    // It carries its start time all the same (a large report may be read before its `started`).
    expect(end.startedAt).toBe(new Date(h.clock.now() - 1000).toISOString());
    expect(end.redelivered).toBeUndefined();
    expect(reports().map((e) => e.kind)).toEqual(['started', 'finished']);
  });

  it('gives the task its run, task and attempt in its environment', async () => {
    h = await workerOnly();
    await h.queue.publish('todo', todo('env', ['sh', '-c', 'cat $GITJOBS_RUN $GITJOBS_TASK $GITJOBS_ATTEMPT'], { attempt: 2 }));
    expect((await until(h, 'finished', () => finished('env'))).stdout).toBe('r-1234567\nenv\n2\n');
  });

  it('reports an image that does not build as a failed attempt, naming the build error', async () => {
    h = await workerOnly({ broken: ['default'] });
    await h.queue.publish('todo', todo('a', ['true']));
    const end = await until(h, 'finished', () => finished('a'));
    expect(reports()[0]).toMatchObject({ kind: 'started', image: 'none' });
    expect(end).toMatchObject({ exitCode: null, image: 'none' });
    expect(end.error).toMatch(/^worker image: building workers\/default at config ccccccc failed/);
    expect(h.executor.started).toHaveLength(0);
  });

  it('kills an attempt past its timeout and reports it timed out', async () => {
    h = await workerOnly();
    await h.queue.publish('todo', todo('slow', ['sleep', '100'], { timeoutMs: 1000 }));
    await until(h, 'running', () => h.executor.running === 1);
    await h.clock.advance(999);
    expect(finished('slow')).toBeUndefined();
    await h.clock.advance(1);
    const end = await until(h, 'finished', () => finished('slow'));
    expect(end).toMatchObject({ timedOut: true, exitCode: null, durationMs: 1000 });
    expect(reports().map((e) => e.kind)).toEqual(['started', 'finished']);
  });

  it('streams output on OUTPUT while the task runs, in order', async () => {
    h = await workerOnly({ programs: { talk: async (_a, io) => { io.out('one\n'); await io.sleep(1000); io.out('two\n'); return 0; } } });
    await h.queue.publish('todo', todo('t', ['talk']));
    await until(h, 'running', () => h.executor.running === 1);
    await h.clock.advance(300);
    expect(h.queue.broadcasts.filter((b) => b.fanout === 'output').map((b) => b.message)).toEqual([{ run: 'r-1234567', task: 't', attempt: 1, seq: 0, data: 'one\n' }]);
    await h.clock.advance(1000);
    await until(h, 'finished', () => finished('t'));
    expect(h.queue.broadcasts.filter((b) => b.fanout === 'output').map((b) => (b.message as { data: string }).data)).toEqual(['one\n', 'two\n']);
  });

  it('kills the attempts of a cancelled run, reporting what they printed as cancelled, and drops its queued ones unrun', async () => {
    h = await workerOnly({ concurrency: 1 });
    await h.queue.publish('todo', todo('a', ['sleep', '100']));
    await h.queue.publish('todo', todo('b', ['echo', 'b']));
    await until(h, 'running', () => h.executor.running === 1);
    await h.queue.broadcast('control', { kind: 'cancel', run: 'r-1234567' });
    await until(h, 'both taken', () => h.queue.depth('todo') === 0 && h.workers[0]!.busy === 0);
    expect(h.executor.started.map((r) => r.labels['io.gitjobs.task-id'])).toEqual(['a']);
    // Cancelled before it had run 100 ms: its start comes with its end, marked cancelled, for its log; b reports nothing.
    expect(reports()).toEqual([expect.objectContaining({ kind: 'finished', task: 'a', cancelled: true, exitCode: null, redelivered: false })]);
    expect(h.log.lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['task killed: its run was cancelled', 'run was cancelled; task dropped unrun']));
  });

  it('abandons an attempt when told that tracking has settled it, and only on the worker named', async () => {
    h = await workerOnly();
    await h.queue.publish('todo', todo('a', ['sleep', '100']));
    await until(h, 'running', () => h.executor.running === 1);
    await h.queue.broadcast('control', { kind: 'abandon', run: 'r-1234567', task: 'a', attempt: 1, worker: 'other:1' });
    await h.idle();
    expect(h.executor.running).toBe(1);
    await h.queue.broadcast('control', { kind: 'abandon', run: 'r-1234567', task: 'a', attempt: 1, worker: h.workers[0]!.id });
    await until(h, 'killed', () => h.executor.running === 0 && h.workers[0]!.busy === 0);
    expect(finished('a')).toBeUndefined();
  });

  it('acks a task that may outlive the broker consumer timeout at its start and holds it by heartbeats with a lease', async () => {
    h = await workerOnly({ settings: { consumerTimeoutMs: 10_000, heartbeatMs: 1000 } });
    await h.queue.publish('todo', todo('long', ['sleep', '100'], { timeoutMs: 60_000 }));
    await until(h, 'running', () => h.executor.running === 1);
    expect(reports()[0]).toMatchObject({ kind: 'started', leaseMs: 3000 });
    await h.clock.advance(2500);
    const beats = h.queue.broadcasts.filter((b) => b.fanout === 'control').map((b) => b.message);
    expect(beats).toEqual([expect.objectContaining({ kind: 'heartbeat', task: 'long', leaseMs: 3000 }), expect.objectContaining({ kind: 'heartbeat', task: 'long', leaseMs: 3000 })]);
    // Acked already: a worker stopping now queues it again itself.
    const stopping = h.workers[0]!.stop(0);
    await h.clock.advance(1);
    await stopping;
    expect(h.queue.peek('todo')).toEqual([expect.objectContaining({ task: 'long', attempt: 1 })]);
    h.workers.splice(0);
  });

  it('gives a running attempt back when it stops and the grace period is over', async () => {
    h = await workerOnly();
    await h.queue.publish('todo', todo('a', ['sleep', '100']));
    await until(h, 'running', () => h.executor.running === 1);
    const stopping = h.workers[0]!.stop(5000);
    await h.clock.advance(4999);
    expect(h.executor.running).toBe(1);
    await h.clock.advance(1);
    await stopping;
    h.workers.splice(0);
    expect(h.queue.peek('todo')).toEqual([expect.objectContaining({ task: 'a' })]);
    expect(finished('a')).toBeUndefined();
  });

  it('on stop, gives back at once the messages it held for a slot, and the running one after the grace period', async () => {
    h = await workerOnly({ concurrency: 1, settings: { readAhead: 1 } });
    await h.queue.publish('todo', todo('a', ['sleep', '100']));
    await h.queue.publish('todo', todo('b', ['echo', 'b']));
    await until(h, 'a running, b held', () => h.executor.running === 1 && h.queue.depth('todo') === 0);
    const stopping = h.workers[0]!.stop(5000);
    await until(h, 'b given back', () => h.queue.peek('todo').some((m) => m.task === 'b'));
    expect(h.executor.started.map((r) => r.labels['io.gitjobs.task-id'])).toEqual(['a']);
    await h.clock.advance(5000);
    await stopping;
    h.workers.splice(0);
    expect(h.queue.peek('todo').map((m) => m.task).sort()).toEqual(['a', 'b']);
    expect(h.executor.started).toHaveLength(1);
  });

  it('dead-letters a TODO message that does not decode, with the schema error, and goes on', async () => {
    h = await workerOnly();
    h.queue.publishRaw('todo', Buffer.from(JSON.stringify({ v: 1, run: 'r', task: 't' })));
    h.queue.publishRaw('todo', Buffer.from('not json'));
    await h.queue.publish('todo', todo('ok', ['true']));
    await until(h, 'finished', () => finished('ok'));
    const dead = h.queue.peek('dead');
    expect(dead).toHaveLength(2);
    expect(dead[0]!.reason).toMatch(/^TODO: message does not match its schema: attempt: .*; worker: /);
    expect(dead[0]!.channel).toBe('todo');
    expect(dead[1]).toMatchObject({ reason: 'TODO: message is not JSON (8 bytes)', body: 'not json' });
  });
});
