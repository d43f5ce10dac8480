import { describe, expect, it } from 'vitest';
import { ProjectError } from '../../src/core/errors.js';
import { parseProject } from '../../src/core/project.js';
import { decideWaiting, dependentsOf, findCycle } from '../../src/core/dag.js';
import type { TaskRecord } from '../../src/core/task.js';

const problems = (project: object) => {
  try {
    parseProject('projects/p.json', JSON.stringify(project));
  } catch (err) {
    return (err as ProjectError).problems;
  }
  throw new Error('accepted');
};

describe('needs in a project file', () => {
  it('names tasks, or a matrix for all its instances', () => {
    const p = parseProject('projects/p.json', JSON.stringify({ fail_fast: true, tasks: [{ id: 'm-{x}', run: 'echo {x}', matrix: { x: [1, 2] } }, { id: 'a', run: 'true' }, { id: 'z', run: 'true', needs: ['m-{x}', 'a', 'a'] }] }));
    expect(p.failFast).toBe(true);
    expect(p.tasks.find((t) => t.id === 'z')!.needs).toEqual(['m-1', 'm-2', 'a']);
    expect(p.tasks.find((t) => t.id === 'a')!.needs).toBeUndefined();
  });

  it('refuses an unknown name, at its path', () => {
    expect(problems({ tasks: [{ id: 'a', run: 'true', needs: ['b'] }] })).toEqual([{ path: '$.tasks[0].needs[0]', message: 'no task or matrix named "b" in this project' }]);
  });

  it('takes the result from a task the project has, and not with a reducer too', () => {
    expect(parseProject('projects/p.json', JSON.stringify({ result: 'b', tasks: [{ id: 'a', run: 'true' }, { id: 'b', run: 'true', needs: ['a'] }] })).resultTask).toBe('b');
    expect(problems({ result: 'c', tasks: [{ id: 'a', run: 'true' }] })).toEqual([{ path: '$.result', message: 'no task "c" in this project to take the result from' }]);
    expect(problems({ result: 'a', reduce: 'sum', tasks: [{ id: 'a', run: 'true' }] })).toEqual([{ path: '$.result', message: 'give "reduce" (a reducer) or "result" (the task whose output is the result), not both' }]);
  });

  it('refuses a cycle, naming it', () => {
    expect(problems({ tasks: [{ id: 'a', run: 'true', needs: ['c'] }, { id: 'b', run: 'true', needs: ['a'] }, { id: 'c', run: 'true', needs: ['b'] }] })).toEqual([
      { path: '$.tasks[0].needs', message: 'needs form a cycle (each needs the next): a -> c -> b -> a' },
    ]);
    expect(problems({ tasks: [{ id: 'a', run: 'true', needs: ['a'] }] })).toEqual([{ path: '$.tasks[0].needs', message: 'needs form a cycle (each needs the next): a -> a' }]);
  });

  it('names only the cycle, not the path that led to it, and names unknown names before looking for one', () => {
    expect(findCycle([{ id: 'x', needs: ['a'] }, { id: 'a', needs: ['b'] }, { id: 'b', needs: ['a'] }])).toEqual(['a', 'b', 'a']);
    expect(problems({ tasks: [{ id: 'a', run: 'true', needs: ['b', 'nope'] }, { id: 'b', run: 'true', needs: ['a'] }] })).toEqual([{ path: '$.tasks[0].needs[1]', message: 'no task or matrix named "nope" in this project' }]);
  });

  it('finds no cycle in a long chain or a diamond, without running out of stack', () => {
    const chain = Array.from({ length: 10_000 }, (_, i) => ({ id: `t${i}`, ...(i ? { needs: [`t${i - 1}`] } : {}) }));
    expect(findCycle(chain)).toBeUndefined();
    expect(findCycle([{ id: 'a' }, { id: 'b', needs: ['a'] }, { id: 'c', needs: ['a'] }, { id: 'd', needs: ['b', 'c'] }])).toBeUndefined();
    // The chain closed into a ring: t0 needs the last.
    expect(findCycle([{ id: 't0', needs: ['t9999'] }, ...chain.slice(1)])).toHaveLength(10_001);
  });
});

describe('a waiting task', () => {
  const t = (id: string, state: TaskRecord['state'], needs?: string[], attempts = 1, maxAttempts = 1): TaskRecord => ({ run: 'r', id, state, attempts, maxAttempts, argv: ['x'], timeoutMs: 1, queuedAt: '', ...(needs ? { needs } : {}) });
  const map = (...tasks: TaskRecord[]) => new Map(tasks.map((x) => [x.id, x]));

  it('is released once all it needs succeeded, skipped once one ended otherwise, else waits', () => {
    const w = t('w', 'waiting', ['a', 'b'], 0);
    expect(decideWaiting(w, map(t('a', 'succeeded'), t('b', 'succeeded'), w))).toEqual({ kind: 'release', task: w });
    expect(decideWaiting(w, map(t('a', 'succeeded'), t('b', 'running'), w))).toBeUndefined();
    // A failure with a retry left is not the end of it.
    expect(decideWaiting(w, map(t('a', 'failed', undefined, 1, 2), t('b', 'succeeded'), w))).toBeUndefined();
    expect(decideWaiting(w, map(t('a', 'failed'), t('b', 'running'), w))).toMatchObject({ kind: 'skip', because: { id: 'a' } });
    expect(decideWaiting(w, map(t('a', 'succeeded'), t('b', 'cancelled'), w))).toMatchObject({ kind: 'skip', because: { id: 'b' } });
    // Needs the run does not have (a re-run of some tasks) do not hold it back.
    expect(decideWaiting(w, map(t('a', 'succeeded'), w))).toEqual({ kind: 'release', task: w });
    expect(decideWaiting(t('q', 'queued', ['a']), map(t('a', 'succeeded')))).toBeUndefined();
  });

  it('is found from what it needs', () => {
    expect(dependentsOf([t('a', 'queued'), t('b', 'waiting', ['a']), t('c', 'waiting', ['a', 'b'])])).toEqual(new Map([['a', ['b', 'c']], ['b', ['c']]]));
  });
});
