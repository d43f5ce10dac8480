import { describe, expect, it } from 'vitest';
import { diffRuns, sideOf, type TaskSide } from '../../src/core/run-diff.js';
import type { TaskRecord } from '../../src/core/task.js';

const side = (over: Partial<TaskSide> = {}): TaskSide => ({ state: 'succeeded', exitCode: 0, durationMs: 10, output: 'o1', image: 'i1', attempts: 1, ...over });
const run = (id: string, tasks: Record<string, TaskSide>) => ({ id, tasks: new Map(Object.entries(tasks)) });

describe('diffRuns', () => {
  it('names what changed per task, durations aside, in the first run’s order then the second’s own', () => {
    const d = diffRuns(
      run('r', { same: side(), slower: side(), fixed: side({ state: 'failed', exitCode: 3, output: 'o2' }), rebuilt: side(), gone: side() }),
      run('r.r1', { same: side(), slower: side({ durationMs: 99 }), fixed: side(), rebuilt: side({ image: 'i2' }), added: side() }),
    );
    expect(d.tasks.map((t) => [t.task, t.changed, Boolean(t.a), Boolean(t.b)])).toEqual([
      ['same', [], true, true],
      ['slower', [], true, true],
      ['fixed', ['state', 'exitCode', 'output'], true, true],
      ['rebuilt', ['image'], true, true],
      ['gone', [], true, false],
      ['added', [], false, true],
    ]);
    expect(d.differing).toBe(4);
    // No exit code and a null one are the same: neither exited.
    expect(diffRuns(run('a', { t: side({ exitCode: null }) }), run('b', { t: side({ exitCode: undefined }) })).differing).toBe(0);
  });

  it('takes from a task what diff shows, naming where a reused result comes from', () => {
    const t = { id: 'x', run: 'r', state: 'succeeded', attempts: 0, maxAttempts: 1, argv: ['true'], timeoutMs: 1, queuedAt: '', exitCode: 0, durationMs: 5, worker: { host: 'h', image: 'sha256:abc' }, reusedFrom: { run: 'r0', task: 'x', commit: 'c' } } as TaskRecord;
    expect(sideOf(t, 'blob')).toEqual({ state: 'succeeded', exitCode: 0, durationMs: 5, output: 'blob', image: 'sha256:abc', attempts: 0, reusedFrom: 'r0/x' });
  });
});
