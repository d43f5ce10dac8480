import { describe, expect, it } from 'vitest';
import { TransitionError } from '../../src/core/errors.js';
import { blobId, gitObjectId } from '../../src/core/git-ids.js';
import { runPaths } from '../../src/core/layout.js';
import { parseProject } from '../../src/core/project.js';
import type { TaskRecord } from '../../src/core/task.js';
import { queuedRun } from '../../src/core/tracking/queue-run.js';
import { reuseTask } from '../../src/core/tracking/reuse.js';

const q = queuedRun({ runId: 'p-1.r1', file: 'projects/p.json', project: parseProject('projects/p.json', JSON.stringify({ tasks: [{ id: 'a', run: 'x' }] })), todoCommit: 't', configCommit: 'c', now: 'n0', rerunOf: 'p-1' });
const from = { run: 'p-1', task: 'a', commit: '9f3e2d1'.padEnd(40, '0') };
const earlier = (over: Partial<TaskRecord>): TaskRecord => ({ ...q.tasks[0]!, run: 'p-1', state: 'succeeded', attempts: 1, ...over });

describe('reuseTask', () => {
  it('records queued -> succeeded with the earlier outcome, its log copied, naming where from in the subject and a trailer', () => {
    const r = reuseTask(q.run, q.tasks[0]!, { from, record: earlier({ exitCode: 0, durationMs: 1500, worker: { host: 'h', image: 'sha256:i' }, outputTruncated: false }), log: 'A\n', stdout: 'A\n' }, 'n1');
    const { run: _run, ...task } = r.task;
    expect(task).toEqual({ id: 'a', state: 'succeeded', attempts: 0, maxAttempts: 1, argv: ['sh', '-c', 'x'], timeoutMs: 600_000, queuedAt: 'n0', finishedAt: 'n1', exitCode: 0, durationMs: 1500, worker: { host: 'h', image: 'sha256:i' }, outputTruncated: false, reusedFrom: from });
    const paths = runPaths(q.run);
    expect(r.changes.map((c) => c.path)).toEqual([paths.taskFile('a'), paths.logFile('a')]);
    expect(r.changes[1]!.content).toBe('A\n');
    expect(r.message).toBe(`p-1.r1/a: queued -> succeeded (reused from p-1/a at 9f3e2d1, ran 1.50s)\n\nTodo-Commit: t\nConfig-Commit: c\nReused-From: p-1/a@${from.commit}\n`);
  });

  it('keeps stdout apart when stderr was in the log, and says nothing of a duration it does not know', () => {
    const r = reuseTask(q.run, q.tasks[0]!, { from, record: earlier({}), log: 'out\nerr\n', stdout: 'out\n' }, 'n1');
    expect(r.task).not.toHaveProperty('durationMs');
    expect(r.task).not.toHaveProperty('worker');
    expect(r.task).not.toHaveProperty('outputTruncated');
    expect(r.task.exitCode).toBe(0);
    const paths = runPaths(q.run);
    expect(r.task.stdoutFile).toBe(paths.stdoutFile('a'));
    expect(r.changes.slice(1)).toEqual([
      { path: paths.logFile('a'), content: 'out\nerr\n' },
      { path: paths.stdoutFile('a'), content: 'out\n' },
    ]);
    expect(r.message.split('\n')[0]).toBe('p-1.r1/a: queued -> succeeded (reused from p-1/a at 9f3e2d1)');
  });

  it('refuses a task that is not queued, naming it', () => {
    const source = { from, record: earlier({}), log: '', stdout: '' };
    expect(() => reuseTask(q.run, { ...q.tasks[0]!, state: 'running' }, source, 'n1')).toThrow(new TransitionError('p-1.r1/a: only a queued task reuses a result; it is running'));
  });
});

describe('git ids', () => {
  it('are what git hash-object gives', () => {
    expect(blobId('')).toBe('e69de29bb2d1d6434b8b29ae775ad8c2e48c5391');
    expect(blobId('1\n')).toBe('d00491fd7e5bb6fa28c517a0bb32b8b506539d4d');
    expect(gitObjectId('blob', Buffer.from('1\n'))).toBe('d00491fd7e5bb6fa28c517a0bb32b8b506539d4d');
    expect(gitObjectId('tree', Buffer.alloc(0))).toBe('4b825dc642cb6eb9a060e54bf8d69288fbee4904');
    // Bytes, not characters: a multi-byte text is hashed by its UTF-8 length.
    expect(blobId('é\n')).toBe(gitObjectId('blob', Buffer.from('é\n', 'utf8')));
    expect(blobId('é\n')).toBe('c6003325155f475bd7c87731607525dce73be9cf');
  });
});
