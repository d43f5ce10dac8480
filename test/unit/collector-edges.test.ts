/**
 * Edges of the collector: observers that listen to only part of what it
 * says, a result already in the done repository after a crash, a retry the
 * broker refuses, a stop with retries still waiting, and a tracking
 * repository rewritten under it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runIdFor } from '../../src/core/ids.js';
import { runPaths } from '../../src/core/layout.js';
import { harness, until, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const tasks = (runs: Record<string, string>, extra: object = {}) => JSON.stringify({ ...extra, tasks: Object.entries(runs).map(([id, run]) => ({ id, run })) });
const finishedRun = (runId: string) => until(h, `${runId} finished`, async () => ((await h.run(runId))?.run.doneCommit ? h.run(runId) : undefined), { advanceMs: 100, steps: 2000 });

describe('the collector', () => {
  it('works with an observer that listens to nothing', async () => {
    h = await harness({ observer: {} });
    const commit = await h.push({ 'projects/o.json': tasks({ a: 'echo a', b: 'exit 1' }) });
    const view = (await finishedRun(runIdFor('projects/o.json', commit)))!;
    expect(view.run.state).toBe('failed');
    expect(h.log.lines.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('does not write a result twice when the done repository has it already (a crash between the two commits)', async () => {
    h = await harness();
    const commit = await h.push({ 'projects/p.json': tasks({ a: 'echo a' }) });
    const id = runIdFor('projects/p.json', commit);
    const view = (await finishedRun(id))!;
    const doneCommits = (await h.store.log('tache_termine')).length;
    // Tracking as it was just before its last commit: every task final, no result recorded.
    const { doneCommit: _gone, ...unfinished } = view.run;
    await h.store.commitAsOther('tache_suivi', { changes: [{ path: runPaths(view.run).runFile, content: JSON.stringify({ ...unfinished, state: 'running', finishedAt: undefined }) }], message: 'as before the crash\n' });
    const report = await h.collector.recover();
    expect(report.completed).toBe(1);
    expect((await h.store.log('tache_termine')).length).toBe(doneCommits);
    const again = (await h.run(id))!;
    expect(again.run).toMatchObject({ state: 'succeeded', doneCommit: (await h.store.head('tache_termine'))! });
  });

  it('logs a retry the broker refuses, and leaves it to the next start', async () => {
    h = await harness({ settings: { retryBaseMs: 1000 } });
    const publish = h.queue.publish.bind(h.queue);
    let refuse = false;
    h.queue.publish = (async (queue: string, message: unknown) => {
      if (refuse && queue === 'todo') throw new Error('channel closed');
      return publish(queue as 'todo', message as never);
    }) as typeof h.queue.publish;
    const commit = await h.push({ 'projects/f.json': tasks({ x: 'exit 2' }, { retries: 1 }) });
    const id = runIdFor('projects/f.json', commit);
    await until(h, 'first attempt failed', async () => (await h.subjects(id)).some((s) => s.includes('failed -> queued')), { advanceMs: 50 });
    refuse = true;
    await h.clock.advance(1000);
    await until(h, 'logged', () => h.log.lines.some((l) => l.msg === 'could not queue a retry; the next start recovers it'));
    expect(h.log.lines.find((l) => l.msg === 'could not queue a retry; the next start recovers it')).toMatchObject({ level: 'error', run: id, task: 'x', err: 'channel closed' });
    expect((await h.run(id))!.tasks[0]).toMatchObject({ state: 'queued', attempts: 1 });
  });

  it('sends no retry after it stops, and dead-letters with the time of the failure', async () => {
    h = await harness({ settings: { retryBaseMs: 5000 } });
    const commit = await h.push({ 'projects/f.json': tasks({ x: 'exit 2' }, { retries: 1 }) });
    const id = runIdFor('projects/f.json', commit);
    await until(h, 'first attempt failed', async () => (await h.subjects(id)).some((s) => s.includes('failed -> queued')), { advanceMs: 50 });
    await h.collector.stop();
    const before = h.queue.peek('todo').length;
    await h.clock.advance(10_000);
    expect(h.queue.peek('todo').length).toBe(before);
  });

  it('reads everything again when tracking was rewritten under it (a new epoch), and records the run once', async () => {
    h = await harness({ workers: 0 });
    const commit = await h.push({ 'projects/p.json': tasks({ a: 'true' }) });
    const id = runIdFor('projects/p.json', commit);
    const base = { v: 1 as const, run: id, task: 'a', attempt: 1, host: 'h1', image: 'i', at: new Date(h.clock.now()).toISOString() };
    await h.collector.report({ ...base, kind: 'started' });
    // Another writer rewrites tracking's branch (a force push): same content, new history.
    await h.store.commitAsOther('tache_suivi', { changes: [{ path: 'NOTE', content: 'rewritten\n' }], message: 'rewrite\n' });
    await h.collector.report({ ...base, kind: 'finished', exitCode: 0, durationMs: 1, timedOut: false, stdout: 'ok\n', output: 'ok\n', truncated: false });
    const view = (await finishedRun(id))!;
    expect(view.run.state).toBe('succeeded');
    expect((await h.result(id))!.value).toBe('ok\n');
    expect((await h.subjects(id)).filter((s) => s.endsWith('running -> succeeded'))).toHaveLength(1);
  });
});

describe('a cancelled task', () => {
  it('keeps what it printed until it was killed as its log, in one commit after the cancel, and the run’s result stands', async () => {
    const seen: string[] = [];
    h = await harness({ programs: { chatty: async (_a, io) => { io.out('first\n'); io.err('warn\n'); await io.sleep(100_000); io.out('never\n'); return 0; } }, observer: { runProgress: () => seen.push('progress'), runFinished: () => seen.push('finished') } });
    const commit = await h.push({ 'projects/c.json': JSON.stringify({ tasks: [{ id: 'a', run: ['chatty'] }] }) });
    const id = runIdFor('projects/c.json', commit);
    await until(h, 'a recorded running', async () => (await h.run(id))?.tasks[0]!.state === 'running', { advanceMs: 50 });
    await h.clock.advance(2000);
    expect(await h.collector.cancel(id, 'enough')).toEqual({ outcome: 'cancelled', tasks: 1 });
    await until(h, 'the log kept', async () => (await h.subjects(id)).some((s) => s.startsWith(`${id}/a: cancelled (output of attempt 1 kept`)), { advanceMs: 50 });
    const subjects = await h.subjects(id);
    expect(subjects.slice(-3).map((s) => s.replace(/\d+\.\d+s/, 'T'))).toEqual([`${id}/a: running -> cancelled (enough)`, `${id}: running -> cancelled (cancelled (enough): 0 of 1 task had finished)`, `${id}/a: cancelled (output of attempt 1 kept, T)`]);
    const view = (await h.run(id))!;
    expect(view.tasks[0]).toMatchObject({ state: 'cancelled', error: 'cancelled: enough', durationMs: expect.any(Number), outputTail: 'first\nwarn\n' });
    const head = (await h.store.head('tache_suivi'))!;
    expect(await h.store.readFile('tache_suivi', head, runPaths(view.run).logFile('a'))).toBe('first\nwarn\n');
    expect(await h.store.readFile('tache_suivi', head, runPaths(view.run).stdoutFile('a'))).toBe('first\n');
    expect((await h.result(id))!.state).toBe('cancelled');
    // The run finished once, and the late output moved nothing on.
    expect(seen).toEqual(['finished']);
    // A second copy of that report changes nothing.
    const before = (await h.store.log('tache_suivi')).length;
    await h.collector.report({ v: 1, kind: 'finished', run: id, task: 'a', attempt: 1, host: 'h1', image: 'i', at: 'x', exitCode: null, durationMs: 1, timedOut: false, stdout: '', output: 'other\n', truncated: false, cancelled: true });
    expect((await h.store.log('tache_suivi')).length).toBe(before);
    expect(h.log.lines.some((l) => l.reason === 'output of a cancelled attempt 1 while cancelled at attempt 1')).toBe(true);
  });
});
