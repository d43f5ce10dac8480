/**
 * Inputs at the edges of the core's rules, each found by a mutant that no
 * other test noticed: decimals, huge numbers, escaped quotes, exact sizes,
 * trailers with odd spacing, takeovers that are not, results past the cap.
 */
import { describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../src/core/channels.js';
import { parseDuration } from '../../src/core/duration.js';
import { projectNameOf } from '../../src/core/layout.js';
import { parseProject, PROJECT_LIMITS } from '../../src/core/project.js';
import { parseSize } from '../../src/core/size.js';
import { ProjectError } from '../../src/core/errors.js';
import type { RunRecord } from '../../src/core/run.js';
import type { TaskRecord } from '../../src/core/task.js';
import { applyEvent } from '../../src/core/tracking/apply-event.js';
import { completeRun, runFinishedCommit } from '../../src/core/tracking/complete-run.js';
import { queuedRun } from '../../src/core/tracking/queue-run.js';
import { parseTrailers } from '../../src/core/transition.js';

const problems = (text: string) => {
  try {
    parseProject('projects/p.json', text);
    return [];
  } catch (e) {
    return (e as ProjectError).problems.map((p) => `${p.path}: ${p.message}`);
  }
};

describe('numbers', () => {
  it('read decimals of more than one digit, and numbers too large to write without an exponent', () => {
    expect(parseDuration('1.25s')).toBe(1250);
    expect(parseDuration(1e21)).toBe(1e24);
    expect(parseSize('1.25k')).toBe(1280);
    // Past 2^53 a byte count is no longer exact: not a size.
    expect(parseSize(2 ** 53 - 1)).toBe(2 ** 53 - 1);
    expect(parseSize(1e21)).toBeUndefined();
  });
});

describe('project files', () => {
  it('ignore brackets inside strings, escaped quotes included, when measuring depth', () => {
    const text = JSON.stringify({ description: '"' + '['.repeat(40), tasks: [{ id: 'a', run: 'true' }] });
    expect(text).toContain('\\"[[[[');
    expect(problems(text)).toEqual([]);
  });
  it('may be exactly as large as the limit', () => {
    const base = JSON.stringify({ tasks: [{ id: 'a', run: 'true' }], description: '' });
    const text = base.replace('"description":""', `"description":"${'x'.repeat(PROJECT_LIMITS.fileBytes - base.length)}"`);
    expect(Buffer.byteLength(text)).toBe(PROJECT_LIMITS.fileBytes);
    expect(problems(text)).toEqual([]);
    expect(problems(text.replace('"x', '"xx'))[0]).toMatch(/^\$: file is 1048577 bytes/);
  });
  it('name the missing shape and every other problem of the document together', () => {
    expect(problems(JSON.stringify({ colour: 1 }))).toEqual(['$: expected "tasks" (a list of {"id", "run"}) or "nqueens" ({"n": N})', '$: unknown field "colour"']);
    expect(problems(JSON.stringify({ limits: { pids: 7 }, tasks: [{ id: 'a', run: 'true' }] }))).toEqual(['$.limits.pids: Too small: expected number to be >=8']);
  });
  it('refuse a task id past the safe integers with its own error, not a crash (found by the fuzz test)', () => {
    expect(problems(JSON.stringify({ tasks: [{ id: 9007199254740992, run: 'echo hello' }, { id: 'b', run: ['echo', 'x'] }] }))).toEqual(['$.tasks[0].id: Too big: expected int to be <=9007199254740991']);
  });

  it('keep only the limits a project names', () => {
    expect(parseProject('projects/p.json', JSON.stringify({ limits: { pids: 8 }, tasks: [{ id: 'a', run: 'true' }] })).limits).toStrictEqual({ pids: 8 });
    expect(parseProject('projects/p.json', JSON.stringify({ limits: { memory: '8m' }, tasks: [{ id: 'a', run: 'true' }] })).limits).toStrictEqual({ memoryBytes: 8 * 1024 * 1024 });
  });
  it('name a project from a file name that only contains .json', () => {
    expect(projectNameOf('projects/q.json.bak')).toBe('q.json.bak');
  });
});

describe('trailers', () => {
  it('are read from the last block, whatever blank lines end the message, and only from lines that start with a key', () => {
    expect(parseTrailers('s\n\nA-B: c\n\n\n')).toEqual({ 'A-B': 'c' });
    expect(parseTrailers('s\n\n Todo-Commit: x\nDone-Commit: d')).toEqual({ 'Done-Commit': 'd' });
  });
});

const project = parseProject('projects/p.json', JSON.stringify({ tasks: [{ id: 'a', run: 'true' }, { id: 'b', run: 'true' }] }));
const q = queuedRun({ runId: 'p-1234567', file: 'projects/p.json', project, todoCommit: 't', configCommit: 'c', now: 'n' });
const ev = { v: 1 as const, run: 'p-1234567', task: 'a', host: 'h2', image: 'i', at: 'x' };

describe('worker reports that are not takeovers', () => {
  const running = { ...q.tasks[0]!, state: 'running', attempts: 1, worker: { host: 'h1', image: 'i', id: 'h1:1' } } as TaskRecord;
  it('a finish from another worker is the attempt’s finish', () => {
    const [f] = applyEvent(q.run, running, { ...ev, kind: 'finished', attempt: 1, worker: 'h2:2', exitCode: 0, durationMs: 1, timedOut: false, stdout: '', output: '', truncated: false });
    expect(f).toMatchObject({ kind: 'applied', task: { state: 'succeeded' } });
  });
  it('a redelivered start of a later attempt is not a takeover of this one', () => {
    expect(applyEvent(q.run, running, { ...ev, kind: 'started', attempt: 2, worker: 'h2:2', redelivered: true } as TaskEvent)).toEqual([{ kind: 'ignored', reason: 'already running at attempt 1' }]);
  });
  it('a start for a running record that names no worker is ignored', () => {
    const { worker: _w, ...bare } = running;
    expect(applyEvent(q.run, bare as TaskRecord, { ...ev, kind: 'started', attempt: 1, worker: 'h2:2', redelivered: true } as TaskEvent)).toEqual([{ kind: 'ignored', reason: 'already running at attempt 1' }]);
  });
});

describe('results', () => {
  const run: RunRecord = { ...q.run, state: 'running' };
  const done = (extra: Partial<TaskRecord>[]) => q.tasks.map((t, i) => ({ ...t, attempts: 1, ...extra[i] }) as TaskRecord);
  it('of a run cancelled after all its tasks had finished say cancelled', () => {
    const r = completeRun({ ...run, cancelled: 'late' }, done([{ state: 'succeeded', stdout: '' }, { state: 'succeeded', stdout: '' }]), 't', 'n');
    expect(r.result).toMatchObject({ state: 'cancelled', error: 'cancelled (late): 2 of 2 tasks had finished' });
  });
  it('count no bytes for a task that printed nothing, and say FAILED past the cap', () => {
    expect(completeRun(run, done([{ state: 'succeeded' }, { state: 'succeeded' }]), 't', 'n', { resultCap: 0 }).result.state).toBe('succeeded');
    const over = completeRun(run, done([{ state: 'succeeded', stdout: 'x' }, { state: 'succeeded' }]), 't', 'n', { resultCap: 0 });
    expect(over.resultChanges.find((c) => c.path.endsWith('result.txt'))!.content).toBe(`FAILED: ${over.result.error}\n`);
  });
  it('cut a long error to 120 characters in the run’s finishing commit', () => {
    const error = 'e'.repeat(300);
    expect(runFinishedCommit({ ...run, state: 'failed', error }, 'd').message.split('\n')[0]).toBe(`p-1234567: running -> failed (${'e'.repeat(120)})`);
  });
});

describe('the output of a cancelled attempt', () => {
  const cancelled = { ...q.tasks[0]!, state: 'cancelled', attempts: 2, error: 'cancelled: x' } as TaskRecord;
  const report = (extra: Partial<Extract<TaskEvent, { kind: 'finished' }>> = {}): TaskEvent => ({ ...ev, kind: 'finished', attempt: 2, worker: 'h2:2', exitCode: null, durationMs: 1500, timedOut: false, stdout: 'o\n', output: 'o\ne\n', truncated: true, cancelled: true, ...extra });
  it('is kept once, for the attempt the task was cancelled at, with stdout apart when stderr was mixed in', () => {
    const [a] = applyEvent(q.run, cancelled, report(), { outputTail: 2 });
    expect(a).toMatchObject({ kind: 'applied', retry: false, task: { state: 'cancelled', durationMs: 1500, outputTruncated: true, outputTail: '…e\n', worker: { host: 'h2', image: 'i', id: 'h2:2' } } });
    const { changes, message } = a as { changes: { path: string; content: string }[]; message: string };
    expect((a as { task: TaskRecord }).task.stdoutFile).toMatch(/\/a\.stdout$/);
    expect(message.split('\n')[0]).toBe('p-1234567/a: cancelled (output of attempt 2 kept, 1.50s)');
    expect(changes.map((c) => [c.path.replace(/^.*\//, ''), c.content.startsWith('{') ? 'json' : c.content])).toEqual([['a.json', 'json'], ['a.log', 'o\ne\n'], ['a.stdout', 'o\n']]);
    expect(applyEvent(q.run, cancelled, report({ stdout: 'same', output: 'same' }))[0]).toMatchObject({ changes: [expect.anything(), expect.anything()] });
    expect((applyEvent(q.run, cancelled, report({ stdout: 'same', output: 'same' }))[0] as { task: TaskRecord }).task).not.toHaveProperty('stdoutFile');
  });
  it('is ignored for another attempt, a task not cancelled, or one whose output is kept already', () => {
    const reason = (t: TaskRecord, e: TaskEvent) => (applyEvent(q.run, t, e)[0] as { reason?: string }).reason;
    expect(reason(cancelled, report({ attempt: 1 }))).toBe('output of a cancelled attempt 1 while cancelled at attempt 2');
    expect(reason({ ...cancelled, state: 'running' }, report())).toBe('output of a cancelled attempt 2 while running at attempt 2');
    expect(reason({ ...cancelled, durationMs: 5 }, report())).toBe('output of a cancelled attempt 2 while cancelled at attempt 2');
  });
  it('of a run in the first layout goes to its log, never to a stdout file', () => {
    const old = { ...q.run, layout: undefined } as unknown as RunRecord;
    delete (old as { layout?: number }).layout;
    const [a] = applyEvent(old, cancelled, report());
    expect((a as { changes: { path: string }[] }).changes.map((c) => c.path)).toEqual(['projects/p-1234567/tasks/a.json', 'projects/p-1234567/logs/a.log']);
  });
});

describe('the result file', () => {
  it('lists each task in result order with its state, exit code, duration, attempts, error, and the blob id of the stdout it gave', () => {
    const run: RunRecord = { ...q.run, state: 'running' };
    const tasks = q.tasks.map((t, i) => ({ ...t, attempts: i + 1, durationMs: 10 * (i + 1), ...(i === 0 ? { state: 'succeeded', exitCode: 0, stdout: '' } : { state: 'failed', exitCode: 3, error: 'exit 3' }) }) as TaskRecord);
    expect(completeRun(run, tasks, 't', 'n').result.tasks).toEqual([
      { id: 'a', state: 'succeeded', exitCode: 0, durationMs: 10, attempts: 1, output: 'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391' },
      { id: 'b', state: 'failed', exitCode: 3, durationMs: 20, attempts: 2, error: 'exit 3' },
    ]);
  });
});
