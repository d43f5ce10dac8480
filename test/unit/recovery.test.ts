/**
 * Recovery of states the old collector left half done, checked by what it
 * commits, queues, holds and logs: a run whose tasks are all final but that
 * has no result, a leased attempt, a retry still waiting out its backoff.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runIdFor } from '../../src/core/ids.js';
import { runPaths } from '../../src/core/layout.js';
import { harness, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const tasks = (runs: Record<string, string>, extra: object = {}) => JSON.stringify({ ...extra, tasks: Object.entries(runs).map(([id, run]) => ({ id, run })) });

describe('recovery', () => {
  it('completes a run left without its result, holds a leased attempt, and sends a retry when its backoff is over', async () => {
    h = await harness({ workers: 0, settings: { consumerTimeoutMs: 10_000, heartbeatMs: 1000 } });
    const commit = await h.push({ 'projects/done.json': tasks({ a: 'true' }), 'projects/lease.json': tasks({ l: 'sleep 100' }, { timeout: '60s' }), 'projects/wait.json': tasks({ w: 'exit 1' }, { retries: 1 }) });
    const [done, lease, wait] = ['done', 'lease', 'wait'].map((f) => runIdFor(`projects/${f}.json`, commit)) as [string, string, string];
    h.queue.purge('todo');
    const now = h.clock.now();
    const file = async (run: string, task: string, record: object) => {
      const v = (await h.run(run))!;
      return { path: runPaths(v.run).taskFile(task), content: JSON.stringify({ ...v.tasks[0]!, ...record }) };
    };
    // What the old collector wrote before it died.
    await h.store.commit('tache_suivi', {
      changes: [
        await file(done, 'a', { state: 'succeeded', attempts: 1, exitCode: 0 }),
        await file(lease, 'l', { state: 'running', attempts: 1, leaseMs: 3000, worker: { host: 'far', image: 'i', id: 'far:1' } }),
        await file(wait, 'w', { state: 'queued', attempts: 1, notBefore: new Date(now + 5000).toISOString() }),
      ],
      message: 'before the crash\n',
    });
    const report = await h.collector.recover();
    expect(report).toEqual({ republished: 1, held: 0, watched: 0, completed: 1, requeued: 0 });
    expect(h.log.lines.find((l) => l.msg === 'recovered unfinished runs from tracking')).toMatchObject({ level: 'info', republished: 1, held: 0, watched: 0, completed: 1, requeued: 0 });
    expect((await h.result(done))!.state).toBe('succeeded');
    expect(h.collector.leasesHeld).toBe(1);
    // The retry waits out what is left of its backoff.
    await h.clock.advance(4999);
    expect(h.queue.peek('todo')).toEqual([]);
    await h.clock.advance(1);
    expect(h.queue.peek('todo').map((m) => [m.run, m.task, m.attempt])).toEqual([[wait, 'w', 2]]);
    // No heartbeat for the leased attempt: it is lost after its lease.
    await h.clock.advance(3000);
    expect((await h.run(lease))!.tasks[0]).toMatchObject({ state: 'failed', error: 'worker lost: no heartbeat from far:1 for 3.00s' });
  });

  it('says nothing when there was nothing to recover', async () => {
    h = await harness({ workers: 0 });
    expect(await h.collector.recover()).toEqual({ republished: 0, held: 0, watched: 0, completed: 0, requeued: 0 });
    expect(h.log.lines.some((l) => l.msg === 'recovered unfinished runs from tracking')).toBe(false);
  });
});

describe('recovery of a retry', () => {
  it('sends a queued retry again even when the broker confirmed the run’s first messages and the queue is still there', async () => {
    h = await harness({ workers: 0 });
    const commit = await h.push({ 'projects/r.json': tasks({ x: 'exit 1' }, { retries: 1 }) });
    const id = runIdFor('projects/r.json', commit);
    const v = (await h.run(id))!;
    expect(v.run.publishedAt).toBeDefined();
    await h.store.commit('tache_suivi', { changes: [{ path: runPaths(v.run).taskFile('x'), content: JSON.stringify({ ...v.tasks[0]!, state: 'queued', attempts: 1 }) }], message: 'retry queued\n' });
    expect(await h.collector.recover()).toMatchObject({ republished: 1, held: 0 });
    await h.idle();
    expect(h.queue.peek('todo').map((m) => [m.task, m.attempt])).toEqual([['x', 1], ['x', 2]]);
  });
});
