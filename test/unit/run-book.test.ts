/**
 * The collector's book of live runs: what it reads from tracking and
 * caches, its counts of final and failed tasks, and the result cap.
 */
import { describe, expect, it } from 'vitest';
import { MemoryGitStore } from '../../src/adapters/memory/git-store.js';
import { allTasksFinal, progressOf, RunBook, type LiveRun } from '../../src/collector/run-book.js';
import { runPaths } from '../../src/core/layout.js';
import type { FileChange } from '../../src/core/ports.js';
import { parseProject } from '../../src/core/project.js';
import type { TaskRecord } from '../../src/core/task.js';
import { queuedRun } from '../../src/core/tracking/queue-run.js';
import { taskChange, runChange } from '../../src/core/tracking/records.js';

const q = queuedRun({
  runId: 'r-1234567',
  file: 'projects/r.json',
  project: parseProject('projects/r.json', JSON.stringify({ retries: 1, tasks: ['a', 'b', 'c'].map((id) => ({ id, run: `echo ${id}` })) })),
  todoCommit: 'a'.repeat(40),
  configCommit: 'c'.repeat(40),
  now: '2026-01-01T00:00:00.000Z',
});
const paths = runPaths(q.run);
const task = (id: string, extra: Partial<TaskRecord>) => ({ ...q.tasks.find((t) => t.id === id)!, ...extra }) as TaskRecord;

async function tracked(extra: { changes: FileChange[] } = { changes: [] }) {
  const store = new MemoryGitStore();
  await store.commit('t', q);
  if (extra.changes.length) await store.commit('t', { changes: extra.changes, message: 'more\n' });
  return store;
}

describe('the run book', () => {
  it('knows no run of an empty or unknown tracking', async () => {
    const book = new RunBook(new MemoryGitStore(), 't', 100);
    expect(await book.load('r-1234567')).toBeUndefined();
    const store = await tracked();
    expect(await new RunBook(store, 't', 100).load('x-1234567')).toBeUndefined();
  });

  it('reads an unfinished run with the stdout of its succeeded tasks, counts it, and keeps it until retired', async () => {
    const store = await tracked({
      changes: [
        taskChange(paths, task('a', { state: 'succeeded', attempts: 1 })),
        { path: paths.logFile('a'), content: 'out a\n' },
        taskChange(paths, task('b', { state: 'failed', attempts: 2 })),
        { path: paths.logFile('b'), content: 'b failed\n' },
      ],
    });
    const book = new RunBook(store, 't', 100);
    const live = (await book.load('r-1234567'))!;
    expect(live.tasks.get('a')!.stdout).toBe('out a\n');
    expect(live.tasks.get('b')!.stdout).toBeUndefined();
    expect(live.tasks.get('c')!.stdout).toBeUndefined();
    expect(progressOf(live)).toEqual({ done: 2, failed: 1, total: 3 });
    expect(live.stdoutBytes).toBe(6);
    expect(allTasksFinal(live)).toBe(false);
    expect(await book.load('r-1234567')).toBe(live);
    book.retire('r-1234567');
    const again = (await book.load('r-1234567'))!;
    expect(again).not.toBe(live);
    expect(again.tasks.get('a')!.stdout).toBe('out a\n');
  });

  it('reads a finished run without its outputs, and does not keep it', async () => {
    const store = await tracked({
      changes: [runChange(paths, { ...q.run, state: 'succeeded', doneCommit: 'd'.repeat(40) }), taskChange(paths, task('a', { state: 'succeeded', attempts: 1 })), { path: paths.logFile('a'), content: 'out\n' }],
    });
    const book = new RunBook(store, 't', 100);
    const live = (await book.load('r-1234567'))!;
    expect(live.tasks.get('a')!.stdout).toBe('');
    expect(await book.load('r-1234567')).not.toBe(live);
  });

  it('keeps its counts right when a final task changes again', async () => {
    const book = new RunBook(new MemoryGitStore(), 't', 100);
    const live: LiveRun = { run: q.run, tasks: new Map(), final: 0, failed: 0, stdoutBytes: 0, overCap: false, waiting: 0, active: 0 };
    for (const t of q.tasks) book.setTask(live, t);
    expect(progressOf(live)).toEqual({ done: 0, failed: 0, total: 3 });
    book.setTask(live, task('a', { state: 'failed', attempts: 2 }));
    expect(progressOf(live)).toEqual({ done: 1, failed: 1, total: 3 });
    // A final failure that is cancelled afterwards is counted once, and no longer as failed.
    book.setTask(live, task('a', { state: 'cancelled', attempts: 2 }));
    expect(progressOf(live)).toEqual({ done: 1, failed: 0, total: 3 });
    book.setTask(live, task('b', { state: 'failed', attempts: 1 }));
    expect(progressOf(live)).toEqual({ done: 1, failed: 0, total: 3 });
    book.setTask(live, task('b', { state: 'succeeded', attempts: 2, stdout: 'x' }));
    book.setTask(live, task('c', { state: 'succeeded', attempts: 1, stdout: 'y' }));
    expect(progressOf(live)).toEqual({ done: 3, failed: 0, total: 3 });
    expect(allTasksFinal(live)).toBe(true);
    expect(allTasksFinal({ ...live, tasks: new Map(), final: 0 })).toBe(false);
  });

  it('counts each output once, lets a run reach its cap exactly, and drops every output once past it', () => {
    const book = new RunBook(new MemoryGitStore(), 't', 4);
    const live: LiveRun = { run: q.run, tasks: new Map(), final: 0, failed: 0, stdoutBytes: 0, overCap: false, waiting: 0, active: 0 };
    book.setTask(live, task('a', { state: 'succeeded', attempts: 1, stdout: 'é' }));
    // The same record again (a duplicate report) adds nothing.
    book.setTask(live, task('a', { state: 'succeeded', attempts: 1, stdout: 'é' }));
    expect(progressOf(live)).toEqual({ done: 1, failed: 0, total: 1 });
    book.setTask(live, task('b', { state: 'failed', attempts: 1, stdout: 'ignored' }));
    expect(live.stdoutBytes).toBe(2);
    book.setTask(live, task('b', { state: 'succeeded', attempts: 2, stdout: 'xy' }));
    expect(live).toMatchObject({ stdoutBytes: 4, overCap: false });
    expect(live.tasks.get('a')!.stdout).toBe('é');
    book.setTask(live, task('c', { state: 'succeeded', attempts: 1, stdout: 'z' }));
    expect(live).toMatchObject({ stdoutBytes: 5, overCap: true });
    expect([...live.tasks.values()].map((t) => t.stdout)).toEqual([undefined, undefined, undefined]);
  });
});
