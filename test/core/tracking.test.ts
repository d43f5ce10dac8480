import { describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../src/core/channels.js';
import { parseProject } from '../../src/core/project.js';
import { reduce } from '../../src/core/reduce.js';
import type { RunRecord } from '../../src/core/run.js';
import { canTransition, type TaskRecord } from '../../src/core/task.js';
import { applyEvent } from '../../src/core/tracking/apply-event.js';
import { completeRun } from '../../src/core/tracking/complete-run.js';
import { queuedRun, rejectedRun } from '../../src/core/tracking/queue-run.js';
import { requeue } from '../../src/core/tracking/task-steps.js';

const TODO = 'a'.repeat(40);
const CONFIG = 'c'.repeat(40);
const now = '2026-01-01T00:00:00.000Z';

function fresh(retries = 0): ReturnType<typeof queuedRun> {
  const project = parseProject('projects/p.json', JSON.stringify({ retries, tasks: [{ id: 'a', run: 'echo a' }, { id: 'b', run: 'echo b' }] }));
  return queuedRun({ runId: 'p-1234567', file: 'projects/p.json', project, todoCommit: TODO, configCommit: CONFIG, now });
}

const ev = (kind: 'started' | 'finished', attempt = 1, extra: Partial<Extract<TaskEvent, { kind: 'finished' }>> = {}): TaskEvent =>
  kind === 'started'
    ? { v: 1, kind, run: 'p-1234567', task: 'a', attempt, host: 'h1', image: 'sha256:img', at: now }
    : { v: 1, kind, run: 'p-1234567', task: 'a', attempt, host: 'h1', image: 'sha256:img', at: now, exitCode: 0, durationMs: 410, timedOut: false, stdout: 'a\n', output: 'a\n', truncated: false, ...extra };

describe('task state machine', () => {
  it('allows only the documented transitions', () => {
    expect(canTransition('queued', 'running')).toBe(true);
    expect(canTransition('running', 'succeeded')).toBe(true);
    expect(canTransition('running', 'failed')).toBe(true);
    expect(canTransition('failed', 'queued')).toBe(true);
    // queued -> succeeded only for a result reused from an earlier run; never queued -> failed.
    expect(canTransition('queued', 'succeeded')).toBe(true);
    expect(canTransition('queued', 'failed')).toBe(false);
    expect(canTransition('succeeded', 'running')).toBe(false);
  });
});

describe('tracking reducer', () => {
  it('records a run and its tasks as queued in one commit', () => {
    const q = fresh();
    expect(q.message.split('\n')[0]).toBe('p-1234567: queued (2 tasks from projects/p.json)');
    expect(q.message).toContain(`Todo-Commit: ${TODO}`);
    expect(q.changes.map((c) => c.path)).toEqual(['runs/9/8/p-1234567/run.json', 'runs/9/8/p-1234567/tasks.jsonl', 'runs/9/8/p-1234567/tasks/a.json', 'runs/9/8/p-1234567/tasks/b.json']);
  });

  it('turns started and finished into one commit each, with trailers', () => {
    const { run, tasks } = fresh();
    const start = applyEvent(run, tasks[0]!, ev('started'))[0]!;
    expect(start.kind).toBe('applied');
    if (start.kind !== 'applied') return;
    expect(start.message.split('\n')[0]).toBe('p-1234567/a: queued -> running (attempt 1/1 on h1)');
    const end = applyEvent(run, start.task, ev('finished'))[0]!;
    if (end.kind !== 'applied') throw new Error('expected applied');
    expect(end.message.split('\n')[0]).toBe('p-1234567/a: running -> succeeded (exit 0, 0.41s)');
    expect(end.message).toMatch(/Worker-Host: h1\nImage: sha256:img/);
    expect(end.task.state).toBe('succeeded');
    expect(end.changes.map((c) => c.path)).toEqual(['runs/9/8/p-1234567/tasks/a.json', 'runs/9/8/p-1234567/tasks/a.log']);
  });

  it('ignores duplicates and stale attempts', () => {
    const { run, tasks } = fresh();
    const start = applyEvent(run, tasks[0]!, ev('started'))[0]!;
    if (start.kind !== 'applied') throw new Error();
    expect(applyEvent(run, start.task, ev('started'))[0]!.kind).toBe('ignored');
    const end = applyEvent(run, start.task, ev('finished'))[0]!;
    if (end.kind !== 'applied') throw new Error();
    expect(applyEvent(run, end.task, ev('finished'))).toEqual([{ kind: 'ignored', reason: 'task is already succeeded' }]);
  });

  it('records a lost start before the finish', () => {
    const { run, tasks } = fresh();
    const steps = applyEvent(run, tasks[0]!, ev('finished'));
    expect(steps.map((s) => (s.kind === 'applied' ? s.message.split('\n')[0] : s.kind))).toEqual([
      'p-1234567/a: queued -> running (attempt 1/1 on h1)',
      'p-1234567/a: running -> succeeded (exit 0, 0.41s)',
    ]);
  });

  it('retries a failed attempt while attempts remain', () => {
    const { run, tasks } = fresh(1);
    const end = applyEvent(run, tasks[0]!, ev('finished', 1, { exitCode: 3 }))[1]!;
    if (end.kind !== 'applied') throw new Error();
    expect(end.retry).toBe(true);
    expect(end.message.split('\n')[0]).toBe('p-1234567/a: running -> failed (exit 3, 0.41s, attempt 1/2)');
    const again = requeue(run, end.task, now, 2000);
    expect(again.message.split('\n')[0]).toBe('p-1234567/a: failed -> queued (retry: attempt 2/2 in 2.00s)');
    expect(again.task.notBefore).toBe('2026-01-01T00:00:02.000Z');
    const second = applyEvent(run, again.task, ev('finished', 2, { exitCode: 3 }))[1]!;
    if (second.kind !== 'applied') throw new Error();
    expect(second.retry).toBe(false);
  });

  it('completes a run: reduced result when all succeeded, the failures named otherwise', () => {
    const { run, tasks } = fresh();
    const finished = tasks.map((t, i) => ({ ...t, state: 'succeeded' as const, attempts: 1, exitCode: 0, stdout: `${i}\n` }));
    const ok = completeRun(run, finished, 'f'.repeat(40), now);
    expect(ok.result.state).toBe('succeeded');
    expect(ok.result.value).toBe('0\n1\n');
    expect(ok.result.commits).toEqual({ todo: TODO, config: CONFIG, tracking: 'f'.repeat(40) });
    const failed = completeRun(run, [finished[0]!, { ...finished[1]!, state: 'failed', exitCode: 3, error: 'exit 3' }], 'f'.repeat(40), now);
    expect(failed.result.state).toBe('failed');
    expect(failed.result.error).toBe('1 of 2 tasks failed: b (exit 3)');
    expect(failed.resultMessage.split('\n')[0]).toBe('p-1234567: failed (1/2 tasks succeeded)');
  });

  it('records a rejected file with every problem', () => {
    const r = rejectedRun({ runId: 'bad-1', file: 'projects/bad.json', problems: [{ path: '$.tasks[0].id', message: 'nope' }], todoCommit: TODO, now });
    expect(r.run.state).toBe('rejected');
    expect(r.message).toContain('projects/bad.json $.tasks[0].id: nope');
  });
});

describe('reducers', () => {
  const out = (...s: string[]) => s.map((stdout, i) => ({ task: String(i), stdout }));
  it('concat, lines, sum, json', () => {
    expect(reduce('concat', out('a\n', 'b\n')).text).toBe('a\nb\n');
    expect(reduce('lines', out('a\n', 'b')).value).toEqual(['a', 'b']);
    expect(reduce('sum', out('1\n', ' 2 ', '3')).value).toBe(6);
    expect(reduce('json', out('{"a":1}', '[2]')).value).toEqual([{ a: 1 }, [2]]);
  });
  it('says which task broke the reducer', () => {
    expect(() => reduce('sum', out('1', 'two'))).toThrow('reduce "sum": task 1 printed "two", which is not a number');
  });
});
