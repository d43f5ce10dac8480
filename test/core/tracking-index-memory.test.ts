/**
 * The tracking index on the in-memory store: summaries of both layouts,
 * their order and fields, runs that go away, entries that are not runs, and
 * the answers for an empty repository and an unknown run.
 */
import { describe, expect, it } from 'vitest';
import { MemoryGitStore } from '../../src/adapters/memory/git-store.js';
import { runDirOf, runPaths } from '../../src/core/layout.js';
import { parseProject } from '../../src/core/project.js';
import { TrackingIndex } from '../../src/core/tracking-index.js';
import { queuedRun, rejectedRun } from '../../src/core/tracking/queue-run.js';
import { runChange, taskChange } from '../../src/core/tracking/records.js';

async function setup() {
  const store = new MemoryGitStore();
  return { store, index: new TrackingIndex(store, 't') };
}

const queue = (runId: string, tasks: number, createdAt: string, retries = 0) =>
  queuedRun({
    runId,
    file: `projects/${runId}.json`,
    project: parseProject(`projects/${runId}.json`, JSON.stringify({ retries, tasks: Array.from({ length: tasks }, (_, i) => ({ id: `t${i}`, run: 'true' })) })),
    todoCommit: 'a'.repeat(40),
    configCommit: 'c'.repeat(40),
    now: createdAt,
  });

describe('TrackingIndex (in memory)', () => {
  it('has nothing to say about an empty repository or an unknown run', async () => {
    const { store, index } = await setup();
    expect(await index.runs()).toEqual({ head: undefined, runs: [] });
    expect(await index.summary('x-1234567')).toStrictEqual({ head: undefined });
    const head = await store.commit('t', { changes: [{ path: 'README.md', content: '#\n' }], message: 'init\n' });
    expect(await index.runs()).toEqual({ head, runs: [] });
    expect(await index.summary('x-1234567')).toStrictEqual({ head });
  });

  it('lists runs of both layouts oldest first (then by id), with their progress and final fields, and forgets deleted runs', async () => {
    const { store, index } = await setup();
    const late = queue('late-0000001', 2, '2026-01-02T00:00:00.000Z', 1);
    const early = queue('early-000002', 1, '2026-01-01T00:00:00.000Z');
    const tie = queue('aaa-00000003', 1, '2026-01-02T00:00:00.000Z');
    for (const q of [late, early, tie]) await store.commit('t', q);
    // late (one retry): t0 failed with its retry left (not final), t1 failed at its last attempt (final).
    const lp = runPaths(late.run);
    await store.commit('t', { changes: [taskChange(lp, { ...late.tasks[0]!, state: 'failed', attempts: 1 }), taskChange(lp, { ...late.tasks[1]!, state: 'failed', attempts: 2 })], message: 'fail\n' });
    // early finished, with a result, as a re-run.
    const finishedEarly = { ...early.run, state: 'succeeded' as const, finishedAt: '2026-01-01T01:00:00.000Z', doneCommit: 'd'.repeat(40), rerunOf: 'early-000001' };
    await store.commit('t', { changes: [runChange(runPaths(early.run), finishedEarly), taskChange(runPaths(early.run), { ...early.tasks[0]!, state: 'succeeded', attempts: 1 })], message: 'done\n' });
    // tie: its one task skipped (something it needed failed): done, and counted failed.
    await store.commit('t', { changes: [taskChange(runPaths(tie.run), { ...tie.tasks[0]!, state: 'skipped' })], message: 'skip\n' });
    // A layout-1 run, and things in the run folders that are not runs.
    const legacy = { ...queue('old-00000004', 2, '2025-12-31T00:00:00.000Z').run, layout: undefined, tasks: ['a', 'b', 'c'], taskCount: 3 };
    delete (legacy as { layout?: number }).layout;
    const p1 = runPaths({ id: legacy.id });
    await store.commit('t', {
      changes: [
        { path: p1.runFile, content: JSON.stringify(legacy) },
        { path: p1.taskFile('a'), content: JSON.stringify({ id: 'a', state: 'cancelled', attempts: 0, maxAttempts: 1 }) },
        { path: p1.taskFile('b'), content: JSON.stringify({ id: 'b', state: 'failed', attempts: 1, maxAttempts: 2 }) },
        { path: runPaths(late.run).logFile('t0'), content: 'not JSON\n' },
        { path: 'projects/notes.txt', content: 'not a run' },
        { path: `${runDirOf('zzz-0000009').split('/').slice(0, 3).join('/')}/stray.txt`, content: 'not a run either' },
        { path: 'runs/README', content: 'x' },
        { path: 'projects/empty-folder/keep', content: '' },
      ],
      message: 'legacy\n',
    });
    const { runs } = await index.runs();
    expect(runs.map((r) => r.id)).toEqual(['old-00000004', 'early-000002', 'aaa-00000003', 'late-0000001']);
    const by = Object.fromEntries(runs.map((r) => [r.id, r]));
    expect(by['late-0000001']).toMatchObject({ state: 'queued', progress: { done: 1, failed: 1, total: 2 }, taskStates: { failed: 2 } });
    expect(by['late-0000001']).not.toHaveProperty('finishedAt');
    expect(by['aaa-00000003']).toMatchObject({ progress: { done: 1, failed: 1, total: 1 }, taskStates: { skipped: 1 } });
    expect(by['late-0000001']).not.toHaveProperty('doneCommit');
    expect(by['late-0000001']).not.toHaveProperty('rerunOf');
    expect(by['early-000002']).toEqual({
      id: 'early-000002',
      project: 'early-000002',
      file: 'projects/early-000002.json',
      state: 'succeeded',
      todoCommit: 'a'.repeat(40),
      createdAt: '2026-01-01T00:00:00.000Z',
      finishedAt: '2026-01-01T01:00:00.000Z',
      rerunOf: 'early-000001',
      doneCommit: 'd'.repeat(40),
      progress: { done: 1, failed: 0, total: 1 },
      taskStates: { succeeded: 1 },
    });
    // Layout 1: the states of the tasks it has files for; its total from the record.
    // c has no file yet: the total comes from the record.
    expect(by['old-00000004']).toMatchObject({ progress: { done: 1, failed: 0, total: 3 }, taskStates: { cancelled: 1, failed: 1 } });
    expect(await index.summary('old-00000004')).toMatchObject({ summary: { id: 'old-00000004' }, record: { id: 'old-00000004', tasks: ['a', 'b', 'c'] } });
    expect((await index.summary('early-000002')).record).toMatchObject({ state: 'succeeded', doneCommit: 'd'.repeat(40) });
    // A run deleted from tracking leaves the list.
    await store.commit('t', { changes: [{ path: runPaths(tie.run).runFile, content: null }, { path: runPaths(tie.run).taskFile('t0'), content: null }, { path: runPaths(tie.run).taskList!, content: null }], message: 'drop\n' });
    expect((await index.runs()).runs.map((r) => r.id)).toEqual(['old-00000004', 'early-000002', 'late-0000001']);
    expect((await index.summary('aaa-00000003')).summary).toBeUndefined();
  });
});

describe('TrackingIndex (in memory), rejected runs', () => {
  it('summarises a rejected run, which has no tasks folder', async () => {
    const { store, index } = await setup();
    const r = rejectedRun({ runId: 'bad-1234567', file: 'projects/bad.json', problems: [{ path: '$', message: 'x' }], todoCommit: 'a'.repeat(40), now: '2026-01-01T00:00:00.000Z' });
    await store.commit('t', r);
    expect((await index.summary('bad-1234567')).summary).toMatchObject({ id: 'bad-1234567', state: 'rejected', progress: { done: 0, failed: 0, total: 0 }, taskStates: {} });
    expect((await index.runs()).runs.map((x) => x.state)).toEqual(['rejected']);
  });
});

describe('TrackingIndex (in memory), commits of a run', () => {
  it('walks back past the run’s later run-level commits to its queued commit', async () => {
    const { store, index } = await setup();
    const q = queue('w-1234567', 1, '2026-01-01T00:00:00.000Z');
    await store.commit('t', q);
    await store.commit('t', { changes: [{ path: 'x', content: '1' }], message: 'w-1234567: published (1 TODO message confirmed by the broker)\n' });
    await store.commit('t', { changes: [{ path: runPaths(q.run).taskFile('t0'), content: JSON.stringify({ id: 't0', state: 'running', attempts: 1 }) }], message: 'w-1234567/t0: queued -> running (attempt 1/1 on h)\n' });
    const head = (await store.head('t'))!;
    expect((await index.commitsOf('w-1234567', head, false)).map((c) => c.subject.split(' (')[0])).toEqual(['w-1234567: queued', 'w-1234567: published', 'w-1234567/t0: queued -> running']);
  });
});
