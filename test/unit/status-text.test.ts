/** `gitjobs status RUN`'s text: every task of a small run; a count and what did not succeed for a big one; --all, --state. And the failures a followed run (`submit --wait`) prints. */
import { describe, expect, it } from 'vitest';
import { parseStates, runStatusText, STATUS_LIST_MAX } from '../../src/cli/commands/status.js';
import { failures, FAILURES_SHOWN } from '../../src/cli/commands/submit.js';
import { UsageError } from '../../src/cli/options.js';
import type { RunView } from '../../src/core/run-reader.js';
import type { TaskRecord, TaskState } from '../../src/core/task.js';

function view(states: TaskState[]): RunView {
  const tasks: TaskRecord[] = states.map((state, i) => ({
    run: 'big-1234567',
    id: `t${i}`,
    state,
    attempts: state === 'waiting' || state === 'queued' || state === 'skipped' ? 0 : 1,
    maxAttempts: 2,
    argv: ['true'],
    timeoutMs: 60_000,
    queuedAt: '2026-11-28T00:00:00.000Z',
    ...(state === 'succeeded' || state === 'failed' ? { exitCode: state === 'failed' ? 3 : 0, durationMs: 1500, worker: { host: 'h1', image: 'img', id: 'h1:4242' } } : {}),
  }));
  const done = tasks.filter((t) => t.state === 'succeeded').length;
  const failed = tasks.filter((t) => t.state === 'failed').length;
  return {
    run: { id: 'big-1234567', project: 'big', file: 'projects/big.json', state: 'running', todoCommit: 'abcdef0123456789', tasks: tasks.map((t) => t.id), createdAt: '2026-11-28T00:00:00.000Z' },
    tasks,
    progress: { done, failed, total: tasks.length },
  };
}

const rowsOf = (text: string) => text.split('\n').filter((l) => /^t\d+\s/.test(l)).map((l) => l.split(/\s+/).slice(0, 2).join(' '));

describe('status RUN', () => {
  it('lists every task of a run of up to STATUS_LIST_MAX tasks, under a count by state', () => {
    const text = runStatusText(view([...Array<TaskState>(STATUS_LIST_MAX - 1).fill('succeeded'), 'failed']));
    expect(text.split('\n').slice(0, 3)).toEqual([
      `run big-1234567  running  ${STATUS_LIST_MAX - 1}/${STATUS_LIST_MAX} done  project big  file projects/big.json@abcdef0`,
      `tasks: ${STATUS_LIST_MAX - 1} succeeded, 1 failed`,
      'TASK  STATE      ATTEMPTS  EXIT  DURATION  WORKER',
    ]);
    expect(rowsOf(text)).toHaveLength(STATUS_LIST_MAX);
    expect(text).toMatch(/^t49\s+failed\s+1\/2\s+3\s+1\.50s\s+h1:4242$/m);
    expect(text).not.toContain('not listed');
  });

  it('past STATUS_LIST_MAX tasks, lists only those that did not succeed, in the run order, and says what it left out', () => {
    const states: TaskState[] = Array<TaskState>(10_000).fill('succeeded');
    states[7] = 'failed';
    states[9_998] = 'running';
    states[9_999] = 'queued';
    const text = runStatusText(view(states));
    expect(text).toContain('\ntasks: 1 queued, 1 running, 9,997 succeeded, 1 failed\n');
    expect(rowsOf(text)).toEqual(['t7 failed', 't9998 running', 't9999 queued']);
    expect(text.endsWith('9,997 more not listed (9,997 succeeded): --all lists every task, --state STATE those in a state\n')).toBe(true);
  });

  it('lists at most STATUS_LIST_MAX of the unfinished ones, counting the rest by state', () => {
    const states: TaskState[] = [...Array<TaskState>(60).fill('failed'), ...Array<TaskState>(10).fill('waiting'), ...Array<TaskState>(100).fill('succeeded')];
    const text = runStatusText(view(states));
    expect(rowsOf(text)).toHaveLength(STATUS_LIST_MAX);
    expect(rowsOf(text).every((r) => r.endsWith('failed'))).toBe(true);
    expect(text.endsWith('120 more not listed (10 waiting, 100 succeeded, 10 failed): --all lists every task, --state STATE those in a state\n')).toBe(true);
  });

  it('--all lists every task; --state those in the states named, or says there are none', () => {
    const states: TaskState[] = [...Array<TaskState>(80).fill('succeeded'), 'failed', 'skipped'];
    expect(rowsOf(runStatusText(view(states), { all: true }))).toHaveLength(82);
    expect(rowsOf(runStatusText(view(states), { states: ['failed', 'skipped'] }))).toEqual(['t80 failed', 't81 skipped']);
    expect(rowsOf(runStatusText(view(states), { states: ['succeeded'] }))).toHaveLength(80);
    const none = runStatusText(view(states), { states: ['running', 'queued'] });
    expect(rowsOf(none)).toEqual([]);
    expect(none.endsWith('tasks: 80 succeeded, 1 failed, 1 skipped\nno task is running or queued\n')).toBe(true);
  });

  it('--state takes task states, comma-separated, and names the valid ones otherwise', () => {
    expect(parseStates('failed, running')).toEqual(['failed', 'running']);
    expect(() => parseStates('done')).toThrow(UsageError);
    expect(() => parseStates('done')).toThrow('--state "done": a task state is one of waiting, queued, running, succeeded, failed, skipped, cancelled');
    expect(() => parseStates(',')).toThrow('--state needs a state');
  });
});

describe('submit --wait, when tasks failed', () => {
  it('shows each failed task with why and its output, up to FAILURES_SHOWN, then counts the rest and says how to see them', () => {
    const few = view(['succeeded', 'failed', 'succeeded', 'failed']);
    few.tasks[1]!.outputTail = 'line one\nline two\n';
    few.tasks[3]!.error = 'timed out after 5s';
    // Each line of the output marked, no empty marked line after the last; nothing for a task that printed nothing.
    expect(failures(few)).toBe('task t1 failed: exit 3\n  | line one\n  | line two\ntask t3 failed: timed out after 5s\n');
    expect(failures(view(['succeeded']))).toBe('');
    const states: TaskState[] = [...Array<TaskState>(2_500).fill('failed'), 'succeeded'];
    const many = failures(view(states));
    expect(many.match(/^task t\d+ failed: exit 3$/gm)).toHaveLength(FAILURES_SHOWN);
    expect(many.endsWith('2,490 more failed tasks: `gitjobs status big-1234567 --state failed` lists them, `gitjobs logs big-1234567 TASK` shows one\'s output\n')).toBe(true);
    expect(failures(view(Array<TaskState>(FAILURES_SHOWN + 1).fill('failed')))).toContain('\n1 more failed task: ');
  });
});
