/**
 * What tracking and done receive, byte for byte: the files and the commit
 * message of each step, pinned as snapshots that were read and checked by
 * hand when written. A change to the audit log's wording or to a record's
 * fields shows here first.
 */
import { describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../src/core/channels.js';
import { parseProject } from '../../src/core/project.js';
import type { RunRecord } from '../../src/core/run.js';
import type { TaskRecord } from '../../src/core/task.js';
import { applyEvent } from '../../src/core/tracking/apply-event.js';
import { completeRun, runFinishedCommit, runStarted } from '../../src/core/tracking/complete-run.js';
import { queuedRun, rejectedRun } from '../../src/core/tracking/queue-run.js';
import { parseTaskList, runTrailers, tail, taskChange, runChange } from '../../src/core/tracking/records.js';
import { cancelTask, requeue } from '../../src/core/tracking/task-steps.js';
import { runPaths } from '../../src/core/layout.js';

const TODO = 'a'.repeat(40);
const CONFIG = 'c'.repeat(40);
const now = '2026-01-01T00:00:00.000Z';

function queued(project: object, extra: { rerunOf?: string } = {}) {
  return queuedRun({ runId: 'p-1234567', file: 'projects/p.json', project: parseProject('projects/p.json', JSON.stringify(project)), todoCommit: TODO, configCommit: CONFIG, now, ...extra });
}

const base = { v: 1 as const, run: 'p-1234567', task: 'a', host: 'h1', image: 'sha256:img', at: '2026-01-01T00:00:01.000Z' };
const started = (attempt = 1, extra: Partial<Extract<TaskEvent, { kind: 'started' }>> = {}): TaskEvent => ({ ...base, kind: 'started', attempt, ...extra });
const finished = (attempt = 1, extra: Partial<Extract<TaskEvent, { kind: 'finished' }>> = {}): TaskEvent => ({
  ...base,
  kind: 'finished',
  attempt,
  at: '2026-01-01T00:00:02.000Z',
  exitCode: 0,
  durationMs: 410,
  timedOut: false,
  stdout: 'a\n',
  output: 'a\n',
  truncated: false,
  ...extra,
});

describe('queueing a run', () => {
  it('writes run.json, the task list once, and one file per task, in one commit', () => {
    const q = queued({ retries: 1, limits: { memory: '64m' }, reduce: 'lines', tasks: [{ id: 'a', run: 'echo a' }, { id: 'b', run: ['echo', 'b'], timeout: '5s' }] }, { rerunOf: 'p-7654321' });
    expect(q.message).toMatchInlineSnapshot(`
      "p-1234567: queued (2 tasks from projects/p.json, re-run of p-7654321)

      Project "p", worker default, reduce lines, 1 retry.

      Todo-Commit: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
      Config-Commit: cccccccccccccccccccccccccccccccccccccccc
      Rerun-Of: p-7654321
      "
    `);
    expect(q.changes).toMatchInlineSnapshot(`
      [
        {
          "content": "{
        "id": "p-1234567",
        "layout": 2,
        "taskCount": 2,
        "taskFanout": 0,
        "project": "p",
        "file": "projects/p.json",
        "format": "tasks",
        "state": "queued",
        "todoCommit": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "configCommit": "cccccccccccccccccccccccccccccccccccccccc",
        "worker": "default",
        "reduce": "lines",
        "limits": {
          "memoryBytes": 67108864
        },
        "createdAt": "2026-01-01T00:00:00.000Z",
        "rerunOf": "p-7654321"
      }
      ",
          "path": "runs/9/8/p-1234567/run.json",
        },
        {
          "content": "{"id":"a","argv":["sh","-c","echo a"],"timeoutMs":600000,"maxAttempts":2}
      {"id":"b","argv":["echo","b"],"timeoutMs":5000,"maxAttempts":2}
      ",
          "path": "runs/9/8/p-1234567/tasks.jsonl",
        },
        {
          "content": "{
        "id": "a",
        "state": "queued",
        "attempts": 0,
        "queuedAt": "2026-01-01T00:00:00.000Z"
      }
      ",
          "path": "runs/9/8/p-1234567/tasks/a.json",
        },
        {
          "content": "{
        "id": "b",
        "state": "queued",
        "attempts": 0,
        "queuedAt": "2026-01-01T00:00:00.000Z"
      }
      ",
          "path": "runs/9/8/p-1234567/tasks/b.json",
        },
      ]
    `);
    expect(q.run.tasks).toEqual(['a', 'b']);
  });
  it('says "1 task", "0 retries"', () => {
    const q = queued({ tasks: [{ id: 'a', run: 'echo a' }] });
    expect(q.message).toMatchInlineSnapshot(`
      "p-1234567: queued (1 task from projects/p.json)

      Project "p", worker default, reduce concat, 0 retries.

      Todo-Commit: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
      Config-Commit: cccccccccccccccccccccccccccccccccccccccc
      "
    `);
    expect(q.run).not.toHaveProperty('limits');
    expect(q.run).not.toHaveProperty('rerunOf');
  });
  it('records a rejected project with each problem, in one commit', () => {
    const one = rejectedRun({ runId: 'bad-1234567', file: 'projects/bad.json', problems: [{ path: '$.tasks', message: 'Required' }], todoCommit: TODO, now });
    expect(one.message).toMatchInlineSnapshot(`
      "bad-1234567: rejected (1 problem in projects/bad.json)

      projects/bad.json $.tasks: Required

      Todo-Commit: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
      "
    `);
    expect(one.changes).toMatchInlineSnapshot(`
      [
        {
          "content": "{
        "id": "bad-1234567",
        "layout": 2,
        "taskCount": 0,
        "project": "bad",
        "file": "projects/bad.json",
        "state": "rejected",
        "todoCommit": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "createdAt": "2026-01-01T00:00:00.000Z",
        "finishedAt": "2026-01-01T00:00:00.000Z",
        "error": "projects/bad.json: $.tasks: Required",
        "problems": [
          {
            "path": "$.tasks",
            "message": "Required"
          }
        ]
      }
      ",
          "path": "runs/a/a/bad-1234567/run.json",
        },
      ]
    `);
    const two = rejectedRun({ runId: 'bad-1234567', file: 'projects/bad.json', problems: [{ path: '$.a', message: 'x' }, { path: '$.b', message: 'y' }], todoCommit: TODO, now, rerunOf: 'bad-7654321' });
    expect(two.message).toMatchInlineSnapshot(`
      "bad-1234567: rejected (2 problems in projects/bad.json)

      projects/bad.json $.a: x
      projects/bad.json $.b: y

      Todo-Commit: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
      Rerun-Of: bad-7654321
      "
    `);
    expect(two.run).toMatchInlineSnapshot(`
      {
        "createdAt": "2026-01-01T00:00:00.000Z",
        "error": "projects/bad.json: $.a: x; $.b: y",
        "file": "projects/bad.json",
        "finishedAt": "2026-01-01T00:00:00.000Z",
        "id": "bad-1234567",
        "layout": 2,
        "problems": [
          {
            "message": "x",
            "path": "$.a",
          },
          {
            "message": "y",
            "path": "$.b",
          },
        ],
        "project": "bad",
        "rerunOf": "bad-7654321",
        "state": "rejected",
        "taskCount": 0,
        "tasks": [],
        "todoCommit": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      }
    `);
  });
});

describe('a worker’s reports', () => {
  const fresh = () => {
    const q = queued({ retries: 1, tasks: [{ id: 'a', run: 'echo a', timeout: '90s' }] });
    return { run: q.run, task: q.tasks[0]! };
  };

  it('start an attempt, holding it by lease when the worker says so', () => {
    const { run, task } = fresh();
    const [s] = applyEvent(run, task, started(1, { leaseMs: 30_000, worker: 'h1:1' }));
    expect(s).toMatchInlineSnapshot(`
      {
        "changes": [
          {
            "content": "{
        "id": "a",
        "state": "running",
        "attempts": 1,
        "queuedAt": "2026-01-01T00:00:00.000Z",
        "startedAt": "2026-01-01T00:00:01.000Z",
        "worker": {
          "host": "h1",
          "image": "sha256:img",
          "id": "h1:1"
        },
        "leaseMs": 30000
      }
      ",
            "path": "runs/9/8/p-1234567/tasks/a.json",
          },
        ],
        "kind": "applied",
        "message": "p-1234567/a: queued -> running (attempt 1/2 on h1)

      Todo-Commit: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
      Config-Commit: cccccccccccccccccccccccccccccccccccccccc
      Worker-Host: h1
      Image: sha256:img
      Attempt: 1/2
      ",
        "retry": false,
        "task": {
          "argv": [
            "sh",
            "-c",
            "echo a",
          ],
          "attempts": 1,
          "id": "a",
          "leaseMs": 30000,
          "maxAttempts": 2,
          "queuedAt": "2026-01-01T00:00:00.000Z",
          "run": "p-1234567",
          "startedAt": "2026-01-01T00:00:01.000Z",
          "state": "running",
          "timeoutMs": 90000,
          "worker": {
            "host": "h1",
            "id": "h1:1",
            "image": "sha256:img",
          },
        },
      }
    `);
    const [plain] = applyEvent(run, task, started(1));
    expect(plain).toMatchObject({ kind: 'applied', task: { state: 'running' } });
    expect((plain as { task: TaskRecord }).task).not.toHaveProperty('leaseMs');
  });
  it('ignore heartbeats, stale attempts, a second start and a finish of another attempt', () => {
    const { run, task } = fresh();
    const running = (applyEvent(run, task, started(1, { worker: 'h1:1' }))[0] as { task: TaskRecord }).task;
    expect(applyEvent(run, running, { ...base, kind: 'heartbeat', attempt: 1 })).toEqual([{ kind: 'ignored', reason: 'heartbeats are not transitions' }]);
    expect(applyEvent(run, { ...running, attempts: 2 }, started(1))).toEqual([{ kind: 'ignored', reason: 'attempt 1 is stale (task is at attempt 2)' }]);
    expect(applyEvent(run, running, started(1, { worker: 'h1:1' }))).toEqual([{ kind: 'ignored', reason: 'already running at attempt 1' }]);
    expect(applyEvent(run, task, started(2))).toEqual([{ kind: 'ignored', reason: 'already queued at attempt 0' }]);
    expect(applyEvent(run, task, finished(2))).toEqual([{ kind: 'ignored', reason: 'finish of attempt 2 while queued at attempt 0' }]);
    expect(applyEvent(run, running, finished(2))).toEqual([{ kind: 'ignored', reason: 'finish of attempt 2 while running at attempt 1' }]);
    const done = (applyEvent(run, running, finished(1))[0] as { task: TaskRecord }).task;
    expect(applyEvent(run, done, finished(1))).toEqual([{ kind: 'ignored', reason: 'task is already succeeded' }]);
  });
  it('fold a lost start into the finish, with the start time the worker kept', () => {
    const { run, task } = fresh();
    const out = applyEvent(run, task, finished(1, { startedAt: '2026-01-01T00:00:00.500Z' }));
    expect(out.map((a) => a.kind === 'applied' && a.message)).toMatchInlineSnapshot(`
      [
        "p-1234567/a: queued -> running (attempt 1/2 on h1)

      Todo-Commit: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
      Config-Commit: cccccccccccccccccccccccccccccccccccccccc
      Worker-Host: h1
      Image: sha256:img
      Attempt: 1/2
      ",
        "p-1234567/a: running -> succeeded (exit 0, 0.41s, attempt 1/2)

      Todo-Commit: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
      Config-Commit: cccccccccccccccccccccccccccccccccccccccc
      Worker-Host: h1
      Image: sha256:img
      Attempt: 1/2
      ",
      ]
    `);
    expect((out[0] as { task: TaskRecord }).task.startedAt).toBe('2026-01-01T00:00:00.500Z');
    const noStart = applyEvent(run, task, finished(1));
    expect((noStart[0] as { task: TaskRecord }).task.startedAt).toBe('2026-01-01T00:00:02.000Z');
  });
  it('let another worker take over a redelivered attempt, but not a fresh copy', () => {
    const { run, task } = fresh();
    const running = (applyEvent(run, task, started(1, { worker: 'h1:1' }))[0] as { task: TaskRecord }).task;
    const [t] = applyEvent(run, running, started(1, { worker: 'h2:2', host: 'h2', leaseMs: 9000, redelivered: true }));
    expect(t).toMatchInlineSnapshot(`
      {
        "changes": [
          {
            "content": "{
        "id": "a",
        "state": "running",
        "attempts": 1,
        "queuedAt": "2026-01-01T00:00:00.000Z",
        "startedAt": "2026-01-01T00:00:01.000Z",
        "worker": {
          "host": "h2",
          "image": "sha256:img",
          "id": "h2:2"
        },
        "leaseMs": 9000
      }
      ",
            "path": "runs/9/8/p-1234567/tasks/a.json",
          },
        ],
        "kind": "applied",
        "message": "p-1234567/a: running -> running (attempt 1/2 redelivered to h2:2; h1:1 stopped reporting)

      Todo-Commit: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
      Config-Commit: cccccccccccccccccccccccccccccccccccccccc
      Worker-Host: h2
      Image: sha256:img
      Attempt: 1/2
      ",
        "retry": false,
        "task": {
          "argv": [
            "sh",
            "-c",
            "echo a",
          ],
          "attempts": 1,
          "id": "a",
          "leaseMs": 9000,
          "maxAttempts": 2,
          "queuedAt": "2026-01-01T00:00:00.000Z",
          "run": "p-1234567",
          "startedAt": "2026-01-01T00:00:01.000Z",
          "state": "running",
          "timeoutMs": 90000,
          "worker": {
            "host": "h2",
            "id": "h2:2",
            "image": "sha256:img",
          },
        },
      }
    `);
    expect(applyEvent(run, running, started(1, { worker: 'h2:2', redelivered: false }))).toEqual([{ kind: 'ignored', reason: 'already running at attempt 1' }]);
    expect(applyEvent(run, running, started(1, { worker: 'h1:1', redelivered: true }))).toEqual([{ kind: 'ignored', reason: 'already running at attempt 1' }]);
    expect(applyEvent(run, running, started(1, { redelivered: true }))).toEqual([{ kind: 'ignored', reason: 'already running at attempt 1' }]);
    const anonymous = { ...running, worker: { host: 'h1', image: 'i' } };
    expect(applyEvent(run, anonymous, started(1, { worker: 'h2:2', redelivered: true }))).toEqual([{ kind: 'ignored', reason: 'already running at attempt 1' }]);
    const [plainTakeover] = applyEvent(run, running, started(1, { worker: 'h2:2' }));
    expect((plainTakeover as { task: TaskRecord }).task).not.toHaveProperty('leaseMs');
    // A finish from the new worker is the attempt's finish.
    expect(applyEvent(run, (t as { task: TaskRecord }).task, finished(1, { worker: 'h2:2' }))[0]).toMatchObject({ kind: 'applied', task: { state: 'succeeded' } });
  });
  it('record a success: the log, and no tail of its output in the record', () => {
    const { run, task } = fresh();
    const running = (applyEvent(run, task, started(1, { leaseMs: 5000 }))[0] as { task: TaskRecord }).task;
    const [s] = applyEvent(run, running, finished(1));
    expect(s).toMatchInlineSnapshot(`
      {
        "changes": [
          {
            "content": "{
        "id": "a",
        "state": "succeeded",
        "attempts": 1,
        "queuedAt": "2026-01-01T00:00:00.000Z",
        "startedAt": "2026-01-01T00:00:01.000Z",
        "worker": {
          "host": "h1",
          "image": "sha256:img"
        },
        "finishedAt": "2026-01-01T00:00:02.000Z",
        "exitCode": 0,
        "durationMs": 410,
        "timedOut": false,
        "outputTruncated": false
      }
      ",
            "path": "runs/9/8/p-1234567/tasks/a.json",
          },
          {
            "content": "a
      ",
            "path": "runs/9/8/p-1234567/tasks/a.log",
          },
        ],
        "kind": "applied",
        "message": "p-1234567/a: running -> succeeded (exit 0, 0.41s, attempt 1/2)

      Todo-Commit: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
      Config-Commit: cccccccccccccccccccccccccccccccccccccccc
      Worker-Host: h1
      Image: sha256:img
      Attempt: 1/2
      ",
        "retry": false,
        "task": {
          "argv": [
            "sh",
            "-c",
            "echo a",
          ],
          "attempts": 1,
          "durationMs": 410,
          "exitCode": 0,
          "finishedAt": "2026-01-01T00:00:02.000Z",
          "id": "a",
          "maxAttempts": 2,
          "outputTruncated": false,
          "queuedAt": "2026-01-01T00:00:00.000Z",
          "run": "p-1234567",
          "startedAt": "2026-01-01T00:00:01.000Z",
          "state": "succeeded",
          "stdout": "a
      ",
          "timedOut": false,
          "timeoutMs": 90000,
          "worker": {
            "host": "h1",
            "image": "sha256:img",
          },
        },
      }
    `);
  });
  it('record a failure with the end of its output, and stdout apart when stderr was mixed in', () => {
    const { run, task } = fresh();
    const running = (applyEvent(run, task, started(1))[0] as { task: TaskRecord }).task;
    const [f] = applyEvent(run, running, finished(1, { exitCode: 3, stdout: 'out\n', output: 'out\nerr: ' + 'x'.repeat(30) + '\n' }), { outputTail: 16 });
    expect(f).toMatchInlineSnapshot(`
      {
        "changes": [
          {
            "content": "{
        "id": "a",
        "state": "failed",
        "attempts": 1,
        "queuedAt": "2026-01-01T00:00:00.000Z",
        "startedAt": "2026-01-01T00:00:01.000Z",
        "worker": {
          "host": "h1",
          "image": "sha256:img"
        },
        "finishedAt": "2026-01-01T00:00:02.000Z",
        "exitCode": 3,
        "durationMs": 410,
        "timedOut": false,
        "outputTruncated": false,
        "error": "exit 3",
        "outputTail": "…xxxxxxxxxxxxxxx\\n",
        "stdoutFile": "runs/9/8/p-1234567/tasks/a.stdout"
      }
      ",
            "path": "runs/9/8/p-1234567/tasks/a.json",
          },
          {
            "content": "out
      err: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
      ",
            "path": "runs/9/8/p-1234567/tasks/a.log",
          },
          {
            "content": "out
      ",
            "path": "runs/9/8/p-1234567/tasks/a.stdout",
          },
        ],
        "kind": "applied",
        "message": "p-1234567/a: running -> failed (exit 3, 0.41s, attempt 1/2)

      Todo-Commit: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
      Config-Commit: cccccccccccccccccccccccccccccccccccccccc
      Worker-Host: h1
      Image: sha256:img
      Attempt: 1/2
      ",
        "retry": true,
        "task": {
          "argv": [
            "sh",
            "-c",
            "echo a",
          ],
          "attempts": 1,
          "durationMs": 410,
          "error": "exit 3",
          "exitCode": 3,
          "finishedAt": "2026-01-01T00:00:02.000Z",
          "id": "a",
          "maxAttempts": 2,
          "outputTail": "…xxxxxxxxxxxxxxx
      ",
          "outputTruncated": false,
          "queuedAt": "2026-01-01T00:00:00.000Z",
          "run": "p-1234567",
          "startedAt": "2026-01-01T00:00:01.000Z",
          "state": "failed",
          "stdout": "out
      ",
          "stdoutFile": "runs/9/8/p-1234567/tasks/a.stdout",
          "timedOut": false,
          "timeoutMs": 90000,
          "worker": {
            "host": "h1",
            "image": "sha256:img",
          },
        },
      }
    `);
  });
  it('say why an attempt failed: its timeout, its error’s first line cut at 120 characters, or its exit code', () => {
    const { run, task } = fresh();
    const running = (applyEvent(run, task, started(1))[0] as { task: TaskRecord }).task;
    const subject = (e: TaskEvent) => (applyEvent(run, running, e)[0] as { message: string }).message.split('\n')[0];
    const record = (e: TaskEvent) => (applyEvent(run, running, e)[0] as { task: TaskRecord }).task;
    expect(subject(finished(1, { exitCode: null, timedOut: true, durationMs: 90_000 }))).toBe('p-1234567/a: running -> failed (timeout after 1m30s, 1m30s, attempt 1/2)');
    expect(record(finished(1, { exitCode: null, timedOut: true })).error).toBe('timeout after 1m30s');
    const long = `image build failed: ${'y'.repeat(200)}\nsecond line`;
    expect(subject(finished(1, { exitCode: null, error: long }))).toBe(`p-1234567/a: running -> failed (${long.slice(0, 120)}, 0.41s, attempt 1/2)`);
    expect(record(finished(1, { exitCode: null, error: long })).error).toBe(long);
    expect(subject(finished(1, { exitCode: 0, error: 'lost' }))).toBe('p-1234567/a: running -> failed (lost, 0.41s, attempt 1/2)');
    expect(subject(finished(1, { exitCode: 0, timedOut: true }))).toBe('p-1234567/a: running -> failed (timeout after 1m30s, 0.41s, attempt 1/2)');
    expect(record(finished(1, { exitCode: 7 })).error).toBe('exit 7');
    expect(record(finished(1))).not.toHaveProperty('error');
    const single = { ...running, maxAttempts: 1 };
    expect((applyEvent(run, single, finished(1, { exitCode: 1 }))[0] as { message: string }).message.split('\n')[0]).toBe('p-1234567/a: running -> failed (exit 1, 0.41s)');
  });
  it('keep layout 1’s records as they were: the tail always, stdout in its own file past 64 KiB', () => {
    const { task } = fresh();
    const old: RunRecord = { ...fresh().run, layout: undefined, taskFanout: undefined } as unknown as RunRecord;
    delete (old as Partial<RunRecord>).layout;
    const running = (applyEvent(old, task, started(1))[0] as { task: TaskRecord }).task;
    const [small] = applyEvent(old, running, finished(1), { outputTail: 1 });
    expect(small).toMatchInlineSnapshot(`
      {
        "changes": [
          {
            "content": "{
        "run": "p-1234567",
        "id": "a",
        "state": "succeeded",
        "attempts": 1,
        "maxAttempts": 2,
        "argv": [
          "sh",
          "-c",
          "echo a"
        ],
        "timeoutMs": 90000,
        "queuedAt": "2026-01-01T00:00:00.000Z",
        "startedAt": "2026-01-01T00:00:01.000Z",
        "worker": {
          "host": "h1",
          "image": "sha256:img"
        },
        "finishedAt": "2026-01-01T00:00:02.000Z",
        "exitCode": 0,
        "durationMs": 410,
        "timedOut": false,
        "stdout": "a\\n",
        "outputTruncated": false,
        "outputTail": "…\\n"
      }
      ",
            "path": "projects/p-1234567/tasks/a.json",
          },
          {
            "content": "a
      ",
            "path": "projects/p-1234567/logs/a.log",
          },
        ],
        "kind": "applied",
        "message": "p-1234567/a: running -> succeeded (exit 0, 0.41s, attempt 1/2)

      Todo-Commit: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
      Config-Commit: cccccccccccccccccccccccccccccccccccccccc
      Worker-Host: h1
      Image: sha256:img
      Attempt: 1/2
      ",
        "retry": false,
        "task": {
          "argv": [
            "sh",
            "-c",
            "echo a",
          ],
          "attempts": 1,
          "durationMs": 410,
          "exitCode": 0,
          "finishedAt": "2026-01-01T00:00:02.000Z",
          "id": "a",
          "maxAttempts": 2,
          "outputTail": "…
      ",
          "outputTruncated": false,
          "queuedAt": "2026-01-01T00:00:00.000Z",
          "run": "p-1234567",
          "startedAt": "2026-01-01T00:00:01.000Z",
          "state": "succeeded",
          "stdout": "a
      ",
          "timedOut": false,
          "timeoutMs": 90000,
          "worker": {
            "host": "h1",
            "image": "sha256:img",
          },
        },
      }
    `);
    const big = 'z'.repeat(64 * 1024 + 1);
    const [large] = applyEvent(old, running, finished(1, { stdout: big, output: big }), { outputTail: 4 });
    expect((large as { changes: { path: string; content: string }[] }).changes.map((c) => [c.path, c.content.length])).toEqual([
      ['projects/p-1234567/tasks/a.json', expect.any(Number)],
      ['projects/p-1234567/logs/a.log', big.length],
      ['projects/p-1234567/stdout/a.txt', big.length],
    ]);
    expect(JSON.parse((large as { changes: { content: string }[] }).changes[0]!.content)).not.toHaveProperty('stdout');
    const exact = 'z'.repeat(64 * 1024);
    const [inline] = applyEvent(old, running, finished(1, { stdout: exact, output: exact }));
    expect((inline as { changes: unknown[] }).changes).toHaveLength(2);
  });
});

describe('steps the collector takes', () => {
  it('requeue a failed attempt with its delay, and cancel a task with the reason', () => {
    const q = queued({ retries: 2, tasks: [{ id: 'a', run: 'echo a' }] });
    const failed: TaskRecord = { ...q.tasks[0]!, state: 'failed', attempts: 1, notBefore: 'x' };
    const r = requeue(q.run, failed, now, 4000);
    expect(r).toMatchInlineSnapshot(`
      {
        "changes": [
          {
            "content": "{
        "id": "a",
        "state": "queued",
        "attempts": 1,
        "queuedAt": "2026-01-01T00:00:00.000Z",
        "notBefore": "2026-01-01T00:00:04.000Z"
      }
      ",
            "path": "runs/9/8/p-1234567/tasks/a.json",
          },
        ],
        "message": "p-1234567/a: failed -> queued (retry: attempt 2/3 in 4.00s)

      Todo-Commit: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
      Config-Commit: cccccccccccccccccccccccccccccccccccccccc
      ",
        "task": {
          "argv": [
            "sh",
            "-c",
            "echo a",
          ],
          "attempts": 1,
          "id": "a",
          "maxAttempts": 3,
          "notBefore": "2026-01-01T00:00:04.000Z",
          "queuedAt": "2026-01-01T00:00:00.000Z",
          "run": "p-1234567",
          "state": "queued",
          "timeoutMs": 600000,
        },
      }
    `);
    expect(requeue(q.run, failed, now).task.notBefore).toBe(now);
    const c = cancelTask(q.run, { ...q.tasks[0]!, notBefore: 'x' }, 'by request', now);
    expect(c).toMatchInlineSnapshot(`
      {
        "changes": [
          {
            "content": "{
        "id": "a",
        "state": "cancelled",
        "attempts": 0,
        "queuedAt": "2026-01-01T00:00:00.000Z",
        "finishedAt": "2026-01-01T00:00:00.000Z",
        "error": "cancelled: by request"
      }
      ",
            "path": "runs/9/8/p-1234567/tasks/a.json",
          },
        ],
        "message": "p-1234567/a: queued -> cancelled (by request)

      Todo-Commit: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
      Config-Commit: cccccccccccccccccccccccccccccccccccccccc
      ",
        "task": {
          "argv": [
            "sh",
            "-c",
            "echo a",
          ],
          "attempts": 0,
          "error": "cancelled: by request",
          "finishedAt": "2026-01-01T00:00:00.000Z",
          "id": "a",
          "maxAttempts": 3,
          "queuedAt": "2026-01-01T00:00:00.000Z",
          "run": "p-1234567",
          "state": "cancelled",
          "timeoutMs": 600000,
        },
      }
    `);
    expect(() => cancelTask(q.run, { ...q.tasks[0]!, state: 'succeeded' }, 'x', now)).toThrow('p-1234567/a: succeeded -> cancelled is not a transition a task can make');
    expect(() => requeue(q.run, q.tasks[0]!, now)).toThrow('p-1234567/a: queued -> queued is not a transition a task can make');
  });
});

describe('completing a run', () => {
  const make = (project: object, states: Partial<TaskRecord>[], runExtra: Partial<RunRecord> = {}) => {
    const q = queued(project);
    return { run: { ...q.run, state: 'running' as const, ...runExtra }, tasks: q.tasks.map((t, i) => ({ ...t, attempts: 1, durationMs: 10, exitCode: 0, ...states[i] }) as TaskRecord) };
  };
  const two = { reduce: 'sum', tasks: [{ id: 'a', run: 'echo 1' }, { id: 'b', run: 'echo 2' }] };

  it('reduces the outputs in task order into result.json and result.txt, and moves the run to its final state', () => {
    const { run, tasks } = make(two, [{ state: 'succeeded', stdout: '1\n' }, { state: 'succeeded', stdout: '2\n' }]);
    const done = completeRun(run, tasks, 't'.repeat(40), now);
    expect(done).toMatchInlineSnapshot(`
      {
        "result": {
          "commits": {
            "config": "cccccccccccccccccccccccccccccccccccccccc",
            "todo": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "tracking": "tttttttttttttttttttttttttttttttttttttttt",
          },
          "file": "projects/p.json",
          "finishedAt": "2026-01-01T00:00:00.000Z",
          "project": "p",
          "reduce": "sum",
          "run": "p-1234567",
          "state": "succeeded",
          "tasks": [
            {
              "attempts": 1,
              "durationMs": 10,
              "exitCode": 0,
              "id": "a",
              "output": "d00491fd7e5bb6fa28c517a0bb32b8b506539d4d",
              "state": "succeeded",
            },
            {
              "attempts": 1,
              "durationMs": 10,
              "exitCode": 0,
              "id": "b",
              "output": "0cfbf08886fca9a91cb753ec8734c84fcbe52c9f",
              "state": "succeeded",
            },
          ],
          "value": 3,
        },
        "resultChanges": [
          {
            "content": "{
        "run": "p-1234567",
        "project": "p",
        "file": "projects/p.json",
        "state": "succeeded",
        "reduce": "sum",
        "value": 3,
        "tasks": [
          {
            "id": "a",
            "state": "succeeded",
            "exitCode": 0,
            "durationMs": 10,
            "attempts": 1,
            "output": "d00491fd7e5bb6fa28c517a0bb32b8b506539d4d"
          },
          {
            "id": "b",
            "state": "succeeded",
            "exitCode": 0,
            "durationMs": 10,
            "attempts": 1,
            "output": "0cfbf08886fca9a91cb753ec8734c84fcbe52c9f"
          }
        ],
        "commits": {
          "todo": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
          "config": "cccccccccccccccccccccccccccccccccccccccc",
          "tracking": "tttttttttttttttttttttttttttttttttttttttt"
        },
        "finishedAt": "2026-01-01T00:00:00.000Z"
      }
      ",
            "path": "runs/9/8/p-1234567/result.json",
          },
          {
            "content": "3
      ",
            "path": "runs/9/8/p-1234567/result.txt",
          },
        ],
        "resultMessage": "p-1234567: succeeded (2/2 tasks succeeded)

      Todo-Commit: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
      Config-Commit: cccccccccccccccccccccccccccccccccccccccc
      Tracking-Commit: tttttttttttttttttttttttttttttttttttttttt
      ",
        "run": {
          "configCommit": "cccccccccccccccccccccccccccccccccccccccc",
          "createdAt": "2026-01-01T00:00:00.000Z",
          "file": "projects/p.json",
          "finishedAt": "2026-01-01T00:00:00.000Z",
          "format": "tasks",
          "id": "p-1234567",
          "layout": 2,
          "project": "p",
          "reduce": "sum",
          "state": "succeeded",
          "taskCount": 2,
          "taskFanout": 0,
          "tasks": [
            "a",
            "b",
          ],
          "todoCommit": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
          "worker": "default",
        },
      }
    `);
    expect(runFinishedCommit(done.run, 'd'.repeat(40))).toMatchInlineSnapshot(`
      {
        "changes": [
          {
            "content": "{
        "id": "p-1234567",
        "layout": 2,
        "taskCount": 2,
        "taskFanout": 0,
        "project": "p",
        "file": "projects/p.json",
        "format": "tasks",
        "state": "succeeded",
        "todoCommit": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "configCommit": "cccccccccccccccccccccccccccccccccccccccc",
        "worker": "default",
        "reduce": "sum",
        "createdAt": "2026-01-01T00:00:00.000Z",
        "finishedAt": "2026-01-01T00:00:00.000Z",
        "doneCommit": "dddddddddddddddddddddddddddddddddddddddd"
      }
      ",
            "path": "runs/9/8/p-1234567/run.json",
          },
        ],
        "message": "p-1234567: running -> succeeded

      Todo-Commit: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
      Config-Commit: cccccccccccccccccccccccccccccccccccccccc
      Done-Commit: dddddddddddddddddddddddddddddddddddddddd
      ",
      }
    `);
  });
  it('fails the run on a failed task, naming each failure', () => {
    const { run, tasks } = make(two, [{ state: 'failed', exitCode: 2, stdout: '' }, { state: 'failed', error: 'timeout after 1s', exitCode: null }]);
    const done = completeRun(run, tasks, 't'.repeat(40), now);
    expect([done.result.state, done.result.error, done.resultChanges.find((c) => c.path.endsWith('.txt'))!.content]).toMatchInlineSnapshot(`
      [
        "failed",
        "2 of 2 tasks failed: a (exit 2), b (timeout after 1s)",
        "FAILED: 2 of 2 tasks failed: a (exit 2), b (timeout after 1s)
      ",
      ]
    `);
    expect(runFinishedCommit(done.run, 'd'.repeat(40), 'queued').message.split('\n')[0]).toBe(`p-1234567: queued -> failed (${done.run.error!.slice(0, 120)})`);
  });
  it('cancels the run when it was cancelled or a task was', () => {
    const byRun = make(two, [{ state: 'succeeded', stdout: '1' }, { state: 'cancelled' }], { cancelled: 'deleted from todo' });
    expect(completeRun(byRun.run, byRun.tasks, 't', now).result).toMatchObject({ state: 'cancelled', error: 'cancelled (deleted from todo): 1 of 2 tasks had finished' });
    const byTask = make(two, [{ state: 'cancelled' }, { state: 'cancelled' }]);
    const r = completeRun(byTask.run, byTask.tasks, 't', now);
    expect([r.result.state, r.result.error, r.resultChanges.find((c) => c.path.endsWith('.txt'))!.content]).toMatchInlineSnapshot(`
      [
        "cancelled",
        "cancelled (by request): 0 of 2 tasks had finished",
        "CANCELLED: cancelled (by request): 0 of 2 tasks had finished
      ",
      ]
    `);
  });
  it('fails the run past the result cap, counting bytes, or the bytes the collector saw', () => {
    const { run, tasks } = make({ tasks: two.tasks }, [{ state: 'succeeded', stdout: 'é\n' }, { state: 'succeeded', stdout: '2\n' }]);
    expect(completeRun(run, tasks, 't', now, { resultCap: 5 }).result.state).toBe('succeeded');
    const over = completeRun(run, tasks, 't', now, { resultCap: 4 });
    expect([over.result.state, over.result.error]).toMatchInlineSnapshot(`
      [
        "failed",
        "the tasks' stdout comes to 5 bytes, past the result cap of 4 bytes (GITJOBS_RESULT_CAP)",
      ]
    `);
    expect(completeRun(run, tasks, 't', now, { resultCap: 6, outputBytes: 7 }).result.error).toMatch(/^the tasks' stdout comes to 7 bytes/);
  });
  it('fails the run when its reducer refuses an output, and uses concat when none is named', () => {
    const { run, tasks } = make(two, [{ state: 'succeeded', stdout: 'one' }, { state: 'succeeded', stdout: '2' }]);
    const bad = completeRun(run, tasks, 't', now);
    expect([bad.result.state, bad.result.error, bad.resultChanges.find((c) => c.path.endsWith('.txt'))!.content]).toMatchInlineSnapshot(`
      [
        "failed",
        "reduce "sum": task a printed "one", which is not a number",
        "FAILED: reduce "sum": task a printed "one", which is not a number
      ",
      ]
    `);
    const plain = make({ tasks: two.tasks }, [{ state: 'succeeded', stdout: 'x' }, { state: 'succeeded' }]);
    expect(completeRun(plain.run, plain.tasks, 't', now).result).toMatchObject({ state: 'succeeded', value: 'x' });
  });
  it('refuses a run with a task not final', () => {
    const { run, tasks } = make(two, [{ state: 'succeeded' }, { state: 'running' }]);
    expect(() => completeRun(run, tasks, 't', now)).toThrow('run p-1234567 is not finished');
  });
  it('starts a run once', () => {
    const q = queued(two);
    expect(runStarted(q.run)).toEqual({ ...q.run, state: 'running' });
    expect(runStarted({ ...q.run, state: 'running' })).toBeUndefined();
  });
});

describe('records', () => {
  it('write JSON with two spaces and a newline; layout 1 keeps the task list in run.json and stdout in the task record', () => {
    const q = queued({ tasks: [{ id: 'a', run: 'echo a' }] });
    const p1 = runPaths({ id: q.run.id });
    const t = { ...q.tasks[0]!, stdout: 'out' };
    expect(taskChange(p1, t).content).toContain('"stdout": "out"');
    expect(taskChange(p1, { ...t, stdoutFile: 'f' }).content).not.toContain('"stdout"');
    expect(taskChange(runPaths(q.run), t).content).not.toContain('"stdout"');
    expect(runChange(p1, q.run).content).toContain('"tasks": [\n    "a"\n  ]');
    expect(runChange(runPaths(q.run), q.run).content).not.toContain('"tasks":');
    expect(String(runChange(p1, q.run).content).endsWith('}\n')).toBe(true);
    expect(parseTaskList('{"id":"a"}\n\n  \n{"id":"b"}\n')).toEqual([{ id: 'a' }, { id: 'b' }]);
    expect(tail('abcdef', 6)).toBe('abcdef');
    expect(tail('abcdef', 5)).toBe('…bcdef');
    expect(tail('abcdef', 0)).toBe('…');
    expect(runTrailers({ todoCommit: 't', configCommit: 'c' })).toEqual({ 'Todo-Commit': 't', 'Config-Commit': 'c' });
  });
});
