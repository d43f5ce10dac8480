import { afterEach, describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../src/core/channels.js';
import { runIdFor } from '../../src/core/ids.js';
import { runPaths } from '../../src/core/layout.js';
import { harness, until, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const tasks = (runs: Record<string, string>, extra: object = {}) => JSON.stringify({ ...extra, tasks: Object.entries(runs).map(([id, run]) => ({ id, run })) });

async function submit(files: Record<string, string>): Promise<(file: string) => string> {
  const commit = await h.push(files);
  return (file) => runIdFor(file, commit);
}

const finishedRun = (runId: string) => until(h, `${runId} finished`, async () => ((await h.run(runId))?.run.doneCommit ? h.run(runId) : undefined), { advanceMs: 100, steps: 2000 });

describe('collector', () => {
  it('commits each transition of a run, then the result, and the run its final state', async () => {
    h = await harness();
    const id = (await submit({ 'projects/p.json': tasks({ a: 'echo a', b: 'echo b' }) }))('projects/p.json');
    const view = (await finishedRun(id))!;
    expect(view.run.state).toBe('succeeded');
    const subjects = await h.subjects(id);
    expect(subjects.slice(0, 2)).toEqual([`${id}: queued (2 tasks from projects/p.json)`, `${id}: published (2 TODO messages confirmed by the broker)`]);
    expect(subjects.filter((s) => s.startsWith(`${id}/a: `))).toEqual([`${id}/a: queued -> running (attempt 1/1 on h1)`, `${id}/a: running -> succeeded (exit 0, 0.00s)`]);
    expect(subjects.at(-1)).toBe(`${id}: running -> succeeded`);
    expect(subjects).toHaveLength(2 + 2 * 2 + 1);
    const result = (await h.result(id))!;
    expect(result).toMatchObject({ state: 'succeeded', value: 'a\nb\n', reduce: 'concat' });
    expect(result.commits.tracking).toBe((await h.store.log('tache_suivi'))[1]!.oid);
    expect(view.run.doneCommit).toBe(await h.store.head('tache_termine'));
    expect(h.finished.map((r) => r.run)).toEqual([id]);
  });

  it('retries a failed attempt after its backoff, and dead-letters the last one', async () => {
    h = await harness({ settings: { retryBaseMs: 2000 } });
    const id = (await submit({ 'projects/f.json': tasks({ x: 'echo no; exit 3' }, { retries: 1 }) }))('projects/f.json');
    await until(h, 'first attempt failed', async () => (await h.subjects(id)).some((s) => s.includes('failed -> queued')));
    expect(await h.subjects(id)).toEqual([
      `${id}: queued (1 task from projects/f.json)`,
      `${id}: published (1 TODO message confirmed by the broker)`,
      `${id}/x: queued -> running (attempt 1/2 on h1)`,
      `${id}/x: running -> failed (exit 3, 0.00s, attempt 1/2)`,
      `${id}/x: failed -> queued (retry: attempt 2/2 in 2.00s)`,
    ]);
    // The retry waits out its backoff.
    await h.clock.advance(1999);
    expect(h.executor.started).toHaveLength(1);
    await h.clock.advance(1);
    const view = (await finishedRun(id))!;
    expect(h.executor.started).toHaveLength(2);
    expect(view.run.state).toBe('failed');
    expect(view.tasks[0]).toMatchObject({ state: 'failed', attempts: 2, exitCode: 3, error: 'exit 3' });
    expect(h.queue.peek('dead')).toEqual([expect.objectContaining({ run: id, task: 'x', attempt: 2, reason: 'exit 3' })]);
    expect((await h.result(id))!.error).toBe('1 of 1 task failed: x (exit 3)');
  });

  it('doubles the backoff each retry, up to its cap', async () => {
    h = await harness({ settings: { retryBaseMs: 1000, retryMaxMs: 3000 } });
    const id = (await submit({ 'projects/f.json': tasks({ x: 'exit 1' }, { retries: 3 }) }))('projects/f.json');
    await finishedRun(id);
    expect((await h.subjects(id)).filter((s) => s.includes('failed -> queued'))).toEqual([
      `${id}/x: failed -> queued (retry: attempt 2/4 in 1.00s)`,
      `${id}/x: failed -> queued (retry: attempt 3/4 in 2.00s)`,
      `${id}/x: failed -> queued (retry: attempt 4/4 in 3.00s)`,
    ]);
  });

  it('ignores a duplicate report and one of a stale attempt, committing nothing', async () => {
    h = await harness();
    const id = (await submit({ 'projects/p.json': tasks({ a: 'echo a' }) }))('projects/p.json');
    await finishedRun(id);
    const before = (await h.store.log('tache_suivi')).length;
    const again: TaskEvent = { v: 1, kind: 'finished', run: id, task: 'a', attempt: 1, host: 'h9', image: 'i', at: new Date(h.clock.now()).toISOString(), exitCode: 1, durationMs: 1, timedOut: false, stdout: '', output: '', truncated: false };
    await h.collector.report(again);
    await h.collector.report({ ...again, attempt: 1, kind: 'started' } as TaskEvent);
    expect((await h.store.log('tache_suivi')).length).toBe(before);
    expect(h.log.lines.filter((l) => /event ignored/.test(l.msg)).map((l) => l.reason)).toEqual(['task is already succeeded', 'task is already succeeded']);
  });

  it('cancels a run: its running attempt is killed, every unfinished task ends cancelled, and the result says so', async () => {
    h = await harness({ concurrency: 1 });
    const id = (await submit({ 'projects/c.json': tasks({ a: 'sleep 100', b: 'echo b' }) }))('projects/c.json');
    await until(h, 'a running', () => h.executor.running === 1);
    // Its worker reports its start once it has run for a moment.
    await until(h, 'a recorded running', async () => (await h.run(id))!.tasks[0]!.state === 'running', { advanceMs: 50 });
    expect(await h.collector.cancel(id, 'no longer needed')).toEqual({ outcome: 'cancelled', tasks: 2 });
    const view = (await finishedRun(id))!;
    expect(view.tasks.map((t) => t.state)).toEqual(['cancelled', 'cancelled']);
    expect(view.run).toMatchObject({ state: 'cancelled', cancelled: 'no longer needed' });
    expect((await h.result(id))!.error).toBe('cancelled (no longer needed): 0 of 2 tasks had finished');
    await until(h, 'killed', () => h.executor.running === 0);
    expect(await h.collector.cancel(id, 'again')).toEqual({ outcome: 'finished', state: 'cancelled' });
    expect(await h.collector.cancel('nope-1234567', 'x')).toEqual({ outcome: 'unknown' });
  });

  it('records an attempt whose heartbeats stop as lost when its lease runs out, and retries it', async () => {
    h = await harness({ workers: 0, settings: { consumerTimeoutMs: 10_000, heartbeatMs: 1000 } });
    const id = (await submit({ 'projects/l.json': tasks({ long: 'sleep 100' }, { timeout: '60s', retries: 1 }) }))('projects/l.json');
    const started = { v: 1 as const, run: id, task: 'long', attempt: 1, host: 'gone', worker: 'gone:1', image: 'i', at: new Date(h.clock.now()).toISOString() };
    await h.queue.take('todo');
    await h.collector.report({ ...started, kind: 'started', leaseMs: 3000 });
    await h.clock.advance(2000);
    await h.collector.report({ ...started, kind: 'heartbeat', leaseMs: 3000 });
    await h.clock.advance(2900);
    expect((await h.run(id))!.tasks[0]!.state).toBe('running');
    await h.clock.advance(1200);
    await until(h, 'lost', async () => (await h.subjects(id)).some((s) => s.includes('worker lost')));
    expect((await h.subjects(id)).slice(3)).toEqual([
      `${id}/long: running -> failed (worker lost: no heartbeat from gone:1 for 3.00s, 5.00s, attempt 1/2)`,
      `${id}/long: failed -> queued (retry: attempt 2/2 in 2.00s)`,
    ]);
    await h.clock.advance(2000);
    expect(h.queue.peek('todo')).toEqual([expect.objectContaining({ task: 'long', attempt: 2 })]);
  });

  it('records a redelivered attempt taken over by another worker as running -> running', async () => {
    h = await harness({ workers: 0 });
    const id = (await submit({ 'projects/t.json': tasks({ a: 'sleep 1' }) }))('projects/t.json');
    const base = { v: 1 as const, run: id, task: 'a', attempt: 1, image: 'i', at: new Date(h.clock.now()).toISOString() };
    await h.collector.report({ ...base, kind: 'started', host: 'h1', worker: 'h1:1', redelivered: false });
    await h.collector.report({ ...base, kind: 'started', host: 'h2', worker: 'h2:2', redelivered: true });
    expect((await h.subjects(id)).at(-1)).toBe(`${id}/a: running -> running (attempt 1/1 redelivered to h2:2; h1:1 stopped reporting)`);
    expect((await h.run(id))!.tasks[0]!.worker).toEqual({ host: 'h2', image: 'i', id: 'h2:2' });
  });

  it('tells a worker that starts a fresh second copy of a running attempt to abandon it, and keeps the first', async () => {
    h = await harness({ workers: 0 });
    const id = (await submit({ 'projects/t.json': tasks({ a: 'sleep 1' }) }))('projects/t.json');
    const base = { v: 1 as const, run: id, task: 'a', attempt: 1, image: 'i', at: new Date(h.clock.now()).toISOString() };
    await h.collector.report({ ...base, kind: 'started', host: 'h1', worker: 'h1:1', redelivered: false });
    const before = await h.subjects(id);
    await h.collector.report({ ...base, kind: 'started', host: 'h2', worker: 'h2:2', redelivered: false });
    await h.idle();
    expect(await h.subjects(id)).toEqual(before);
    expect((await h.run(id))!.tasks[0]!.worker!.id).toBe('h1:1');
    expect(h.queue.broadcasts.map((b) => b.message)).toContainEqual({ kind: 'abandon', run: id, task: 'a', attempt: 1, worker: 'h2:2' });
  });

  it('tells a worker that starts a copy of a settled attempt to abandon it', async () => {
    h = await harness({ workers: 0 });
    const id = (await submit({ 'projects/d.json': tasks({ a: 'true' }) }))('projects/d.json');
    await h.collector.cancel(id, 'stop');
    await h.collector.report({ v: 1, kind: 'started', run: id, task: 'a', attempt: 1, host: 'h1', worker: 'h1:7', image: 'i', at: new Date(h.clock.now()).toISOString() });
    await h.idle();
    expect(h.queue.broadcasts.map((b) => b.message)).toContainEqual({ kind: 'abandon', run: id, task: 'a', attempt: 1, worker: 'h1:7' });
  });

  it('dead-letters a DONE message that does not decode and keeps going', async () => {
    h = await harness();
    h.queue.publishRaw('done', Buffer.from('{"kind":"finished"}'));
    const id = (await submit({ 'projects/p.json': tasks({ a: 'echo a' }) }))('projects/p.json');
    await finishedRun(id);
    expect(h.queue.peek('dead')).toEqual([expect.objectContaining({ channel: 'done', reason: expect.stringMatching(/^DONE: message does not match its schema/) })]);
  });

  it('takes a step again from a fresh read when another writer moves tracking before its commits are durable', async () => {
    h = await harness({ workers: 0 });
    const id = (await submit({ 'projects/p.json': tasks({ a: 'true', b: 'true' }) }))('projects/p.json');
    h.store.hold();
    const at = new Date(h.clock.now()).toISOString();
    const reported = h.collector.report({ v: 1, kind: 'started', run: id, task: 'a', attempt: 1, host: 'h1', worker: 'h1:1', image: 'i', at });
    await h.idle();
    // Another gitjobs records b's start first; ours was staged but never became durable.
    const view = (await h.run(id))!;
    const other = await h.store.commitAsOther('tache_suivi', { changes: [{ path: runPaths(view.run).taskFile('b'), content: JSON.stringify({ ...view.tasks[1]!, state: 'running', attempts: 1 }) }], message: `${id}/b: queued -> running (by the other)\n` });
    h.store.release();
    await reported;
    const subjects = await h.subjects(id);
    expect(subjects).toEqual([`${id}: queued (2 tasks from projects/p.json)`, `${id}: published (2 TODO messages confirmed by the broker)`, `${id}/b: queued -> running (by the other)`, `${id}/a: queued -> running (attempt 1/1 on h1)`]);
    expect((await h.store.log('tache_suivi'))[1]!.oid).toBe(other);
    expect(subjects.filter((s) => s.includes('/a: '))).toHaveLength(1);
    expect((await h.run(id))!.tasks.map((t) => t.state)).toEqual(['running', 'running']);
  });

  describe('recovery', () => {
    it('sends queued tasks again, completes a run whose tasks are all final, and queues a failed attempt its retry', async () => {
      h = await harness({ workers: 0 });
      const ids = await submit({ 'projects/q.json': tasks({ a: 'echo a' }), 'projects/f.json': tasks({ x: 'exit 1' }, { retries: 1 }) });
      const q = ids('projects/q.json');
      const f = ids('projects/f.json');
      const at = new Date(h.clock.now()).toISOString();
      const fin = { v: 1 as const, kind: 'finished' as const, attempt: 1, host: 'h', image: 'i', at, durationMs: 5, timedOut: false, truncated: false };
      // x failed on the old collector, which died before recording its retry.
      const fv = (await h.run(f))!;
      await h.store.commit('tache_suivi', { changes: [{ path: runPaths(fv.run).taskFile('x'), content: JSON.stringify({ ...fv.tasks[0]!, state: 'failed', attempts: 1, exitCode: 1 }) }], message: 'x failed\n' });
      h.queue.take('todo');
      h.queue.take('todo');
      h.queue.purge('todo');
      const report = await h.collector.recover();
      expect(report).toEqual({ republished: 1, held: 0, watched: 0, completed: 0, requeued: 1 });
      await h.idle();
      expect(h.queue.peek('todo').map((m) => [m.run, m.task, m.attempt])).toEqual([[q, 'a', 1]]);
      await h.clock.advance(2000);
      expect(h.queue.peek('todo').map((m) => [m.run, m.task, m.attempt])).toEqual([[q, 'a', 1], [f, 'x', 2]]);
      // q's task finishes while no collector runs; recovery gives the run its result.
      await h.collector.report({ ...fin, run: q, task: 'a', exitCode: 0, stdout: 'a\n', output: 'a\n' });
      expect((await h.run(q))!.run.state).toBe('succeeded');
    });

    it('leaves queued first attempts in the queue when the broker confirmed them, and sends them again when the queue was lost', async () => {
      h = await harness({ workers: 0 });
      const id = (await submit({ 'projects/p.json': tasks({ a: 'true', b: 'true' }) }))('projects/p.json');
      expect(await h.subjects(id)).toEqual([`${id}: queued (2 tasks from projects/p.json)`, `${id}: published (2 TODO messages confirmed by the broker)`]);
      expect((await h.run(id))!.run.publishedAt).toBe(new Date(h.clock.now()).toISOString());
      expect(await h.collector.recover()).toMatchObject({ republished: 0, held: 2 });
      await h.idle();
      expect(h.queue.peek('todo')).toHaveLength(2);
      // The queue is deleted and made again: its messages are gone, and recovery sends them again.
      h.queue.purge('todo');
      expect(await h.collector.recover()).toMatchObject({ republished: 2, held: 0 });
      await h.idle();
      expect(h.queue.peek('todo').map((m) => m.task)).toEqual(['a', 'b']);
    });

    it('sends queued first attempts again when the run never recorded that its messages were confirmed', async () => {
      h = await harness({ workers: 0 });
      const id = (await submit({ 'projects/p.json': tasks({ a: 'true' }) }))('projects/p.json');
      // As if the dispatcher had died before the broker confirmed: the run has no published.json.
      const view = (await h.run(id))!;
      await h.store.commit('tache_suivi', { changes: [{ path: `${view.run.layout === 2 ? runPaths(view.run).publishedFile : ''}`, content: null }], message: 'forget\n' });
      h.queue.take('todo');
      expect(await h.collector.recover()).toMatchObject({ republished: 1, held: 0 });
      await h.idle();
      expect(h.queue.peek('todo').map((m) => [m.task, m.attempt])).toEqual([['a', 1]]);
    });

    it('queues a running attempt again only when no worker reports it within three heartbeats', async () => {
      h = await harness({ workers: 0, settings: { heartbeatMs: 1000 } });
      const id = (await submit({ 'projects/r.json': tasks({ held: 'sleep 100', lost: 'sleep 100' }) }))('projects/r.json');
      h.queue.take('todo');
      h.queue.take('todo');
      const base = { v: 1 as const, run: id, attempt: 1, image: 'i', at: new Date(h.clock.now()).toISOString() };
      await h.collector.report({ ...base, task: 'held', kind: 'started', host: 'h1', worker: 'h1:1' });
      await h.collector.report({ ...base, task: 'lost', kind: 'started', host: 'h2', worker: 'h2:2' });
      // A new collector starts: both are recorded running.
      await h.collector.stop();
      const report = await h.collector.recover();
      await h.collector.start();
      expect(report.watched).toBe(2);
      await h.clock.advance(2000);
      await h.queue.broadcast('control', { ...base, task: 'held', kind: 'heartbeat', host: 'h1', worker: 'h1:1' });
      await h.clock.advance(1500);
      expect(h.queue.peek('todo').map((m) => [m.task, m.attempt])).toEqual([['lost', 1]]);
      expect(h.log.lines.filter((l) => l.msg === 'a running attempt that no worker reports holding; queued again').map((l) => l.task)).toEqual(['lost']);
    });
  });
});
