/**
 * What the collector tells the rest of gitjobs (observers: metrics, live
 * events, commit statuses) and its operator (log lines), and the result cap,
 * on the in-memory doubles.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runIdFor } from '../../src/core/ids.js';
import type { RunObserver } from '../../src/core/ports.js';
import { harness, until, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const tasks = (runs: Record<string, string>, extra: object = {}) => JSON.stringify({ ...extra, tasks: Object.entries(runs).map(([id, run]) => ({ id, run })) });
const finishedRun = (runId: string) => until(h, `${runId} finished`, async () => ((await h.run(runId))?.run.doneCommit ? h.run(runId) : undefined), { advanceMs: 100, steps: 2000 });

function recorder(): RunObserver & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  return {
    calls,
    runQueued: (r) => calls.push(['queued', r.id]),
    runProgress: (r, p) => calls.push(['progress', r.id, p]),
    runFinished: (r, p) => calls.push(['finished', r.id, r.state, p]),
    taskChanged: (c) => calls.push(['task', c.run, c.task.id, c.task.state, c.commit, c.subject]),
    committed: (repo, ms) => calls.push(['committed', repo, ms]),
  };
}

describe('the collector’s observers', () => {
  it('hear each committed transition with its commit and subject, each progress, the finish, and how long commits took', async () => {
    const seen = recorder();
    h = await harness({ observer: seen });
    const commit = await h.push({ 'projects/o.json': tasks({ a: 'echo a', b: 'exit 2' }) });
    const id = runIdFor('projects/o.json', commit);
    await finishedRun(id);
    await h.idle();
    const log = await h.store.log('tache_suivi');
    const subjectOf = new Map(log.map((c) => [c.oid, c.message.split('\n')[0]]));
    const taskCalls = seen.calls.filter((c) => c[0] === 'task');
    expect(taskCalls.map((c) => `${c[2]} ${c[3]}`).sort()).toEqual(['a running', 'a succeeded', 'b failed', 'b running']);
    for (const c of taskCalls) {
      expect(c[1]).toBe(id);
      // The commit named is the one that records it, and its subject is that commit's.
      expect(subjectOf.get(c[4] as string)).toBe(c[5]);
      expect(c[5]).toMatch(new RegExp(`^${id}/${c[2]}: `));
    }
    expect(seen.calls.filter((c) => c[0] === 'progress').map((c) => c[2])).toEqual([
      { done: 1, failed: expect.any(Number), total: 2 },
    ]);
    expect(seen.calls.filter((c) => c[0] === 'finished')).toEqual([['finished', id, 'failed', { done: 2, failed: 1, total: 2 }]]);
    const committed = seen.calls.filter((c) => c[0] === 'committed');
    expect(committed.length).toBeGreaterThan(0);
    for (const c of committed) {
      expect(['tache_suivi', 'tache_termine']).toContain(c[1]);
      expect(c[2]).toBeGreaterThanOrEqual(0);
      expect(c[2]).toBeLessThan(60_000);
    }
  });
});

describe('the collector’s log', () => {
  it('says when a run finishes, a task is retried, a task fails for good, and a run is cancelled', async () => {
    h = await harness({ settings: { retryBaseMs: 1000 }, concurrency: 1 });
    const commit = await h.push({ 'projects/f.json': tasks({ x: 'exit 4' }, { retries: 1 }) });
    const id = runIdFor('projects/f.json', commit);
    const view = (await finishedRun(id))!;
    const line = (msg: string) => h.log.lines.find((l) => l.msg === msg);
    expect(line('task failed; retrying after backoff')).toMatchObject({ level: 'info', next: 2, delayMs: 1000 });
    expect(line('task failed for good; message sent to the dead-letter queue')).toMatchObject({ level: 'warn', reason: 'exit 4', attempts: 2 });
    expect(line('run finished')).toMatchObject({ level: 'info', state: 'failed', doneCommit: view.run.doneCommit });
    expect(h.queue.peek('dead')).toEqual([expect.objectContaining({ run: id, task: 'x', reason: 'exit 4', failedAt: view.tasks[0]!.finishedAt })]);

    const c2 = await h.push({ 'projects/c.json': tasks({ done: 'true', slow: 'sleep 100' }) });
    const cid = runIdFor('projects/c.json', c2);
    await until(h, 'done succeeded and slow running', async () => {
      const v = await h.run(cid);
      return v?.tasks[0]!.state === 'succeeded' && v.tasks[1]!.state === 'running';
    }, { advanceMs: 50, steps: 2000 });
    // Only the unfinished task is cancelled; the finished one keeps its state.
    expect(await h.collector.cancel(cid, 'enough')).toEqual({ outcome: 'cancelled', tasks: 1 });
    expect(line('run cancelled')).toMatchObject({ level: 'info', tasks: 1, reason: 'enough' });
    const cancelled = (await finishedRun(cid))!;
    expect(cancelled.tasks.map((t) => t.state)).toEqual(['succeeded', 'cancelled']);
    expect((await h.result(cid))!.error).toBe('cancelled (enough): 1 of 2 tasks had finished');
    expect((await h.subjects(cid)).filter((s) => s.includes('-> cancelled'))).toEqual([`${cid}/slow: running -> cancelled (enough)`, `${cid}: running -> cancelled (cancelled (enough): 1 of 2 tasks had finished)`]);
  });
});

describe('the result cap', () => {
  it('fails a run whose outputs pass it, naming the cap and what they came to', async () => {
    h = await harness({ settings: { resultCap: 10 } });
    const commit = await h.push({ 'projects/big.json': tasks({ a: 'echo 12345', b: 'echo 67890', c: 'echo x' }) });
    const id = runIdFor('projects/big.json', commit);
    await finishedRun(id);
    const result = (await h.result(id))!;
    expect(result.state).toBe('failed');
    expect(result.error).toMatch(/^the tasks' stdout comes to 14 bytes, past the result cap of 10 bytes/);
  });
  it('lets a run whose outputs come to exactly the cap succeed', async () => {
    h = await harness({ settings: { resultCap: 12 } });
    const commit = await h.push({ 'projects/fit.json': tasks({ a: 'echo 12345', b: 'echo 67890' }) });
    const id = runIdFor('projects/fit.json', commit);
    await finishedRun(id);
    expect((await h.result(id))!).toMatchObject({ state: 'succeeded', value: '12345\n67890\n' });
  });
});
