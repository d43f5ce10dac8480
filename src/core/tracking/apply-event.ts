/**
 * A worker's report becomes transitions. Duplicates and reports of stale
 * attempts are ignored: the queues deliver at least once.
 */
import { formatDuration } from '../duration.js';
import type { FinishedEvent, TaskEvent } from '../channels.js';
import type { FileChange } from '../ports.js';
import { runPaths, type RunPaths } from '../layout.js';
import type { RunRecord } from '../run.js';
import { notRetriedBecause, retryable } from '../retry.js';
import { assertTransition, isFinal, type TaskRecord } from '../task.js';
import { commitMessage, transitionSubject, type Trailers } from '../transition.js';
import { STDOUT_INLINE, tail, taskChange, type Commitable } from './records.js';

export type Applied =
  | { kind: 'ignored'; reason: string }
  | ({ kind: 'applied'; task: TaskRecord; retry: boolean } & Commitable);

export interface ApplyOptions {
  /** Characters of output kept in the task record (`outputTail`); the whole is in the log file. */
  outputTail: number;
  /** What the attempt left under /out, committed to done already (collector/task-files.ts). */
  files?: import('../files.js').TaskFiles;
}

const DEFAULTS: ApplyOptions = { outputTail: 2048 };

/** The trailers of a transition reported by a worker. */
function eventTrailers(run: RunRecord, task: TaskRecord, event: TaskEvent): Trailers {
  return {
    'Todo-Commit': run.todoCommit,
    'Config-Commit': run.configCommit,
    'Worker-Host': event.host,
    Image: event.image,
    Attempt: `${event.attempt}/${task.maxAttempts}`,
  };
}

function workerOf(event: TaskEvent): NonNullable<TaskRecord['worker']> {
  return { host: event.host, image: event.image, ...(event.baseImage ? { base: event.baseImage } : {}), ...(event.worker ? { id: event.worker } : {}) };
}

export function applyEvent(run: RunRecord, task: TaskRecord, event: TaskEvent, options: ApplyOptions = DEFAULTS): Applied[] {
  if (event.kind === 'heartbeat') return [{ kind: 'ignored', reason: 'heartbeats are not transitions' }];
  if (event.kind === 'finished' && event.cancelled) return [cancelledOutput(run, task, event, options)];
  if (isFinal(task)) return [{ kind: 'ignored', reason: `task is already ${task.state}` }];
  if (event.attempt < task.attempts) return [{ kind: 'ignored', reason: `attempt ${event.attempt} is stale (task is at attempt ${task.attempts})` }];
  const trailers = eventTrailers(run, task, event);
  const paths = runPaths(run);

  if (isTakeover(task, event)) {
    // Another worker took the attempt over: its first worker stopped reporting and the broker redelivered it.
    assertTransition(`${run.id}/${task.id}`, 'running', 'running');
    const next: TaskRecord = { ...task, startedAt: event.at, worker: workerOf(event) };
    if (event.kind === 'started' && event.leaseMs) next.leaseMs = event.leaseMs;
    const detail = `attempt ${event.attempt}/${task.maxAttempts} redelivered to ${event.worker}; ${task.worker!.id} stopped reporting`;
    return [{ kind: 'applied', task: next, retry: false, changes: [taskChange(paths, next)], message: commitMessage(transitionSubject(run.id, task.id, 'running', 'running', detail), trailers) }];
  }

  const out: Applied[] = [];
  let current = task;
  // A `finished` whose `started` was lost still records the start first.
  const startNeeded = current.state === 'queued' && event.attempt === current.attempts + 1;
  if (event.kind === 'started' && !startNeeded) return [{ kind: 'ignored', reason: `already ${current.state} at attempt ${current.attempts}` }];
  if (startNeeded) {
    assertTransition(`${run.id}/${task.id}`, 'queued', 'running');
    const startedAt = event.kind === 'finished' && event.startedAt ? event.startedAt : event.at;
    const next: TaskRecord = { ...current, state: 'running', attempts: event.attempt, startedAt, worker: workerOf(event) };
    if (event.kind === 'started' && event.leaseMs) next.leaseMs = event.leaseMs;
    else delete next.leaseMs;
    for (const k of ['finishedAt', 'exitCode', 'durationMs', 'timedOut', 'error'] as const) delete next[k];
    const detail = `attempt ${event.attempt}/${task.maxAttempts} on ${event.host}`;
    out.push({ kind: 'applied', task: next, retry: false, changes: [taskChange(paths, next)], message: commitMessage(transitionSubject(run.id, task.id, 'queued', 'running', detail), trailers) });
    current = next;
  }
  if (event.kind === 'finished') {
    if (current.state !== 'running' || current.attempts !== event.attempt) {
      out.push({ kind: 'ignored', reason: `finish of attempt ${event.attempt} while ${current.state} at attempt ${current.attempts}` });
      return out;
    }
    out.push(finish(run, current, event, trailers, options));
  }
  return out;
}

/**
 * A `started` for the attempt the task is running, from a worker other than
 * the one recorded, on a copy the broker redelivered (its first worker's
 * connection went). A fresh copy is a duplicate, not a takeover.
 */
function isTakeover(task: TaskRecord, event: TaskEvent): boolean {
  return (
    event.kind === 'started' &&
    event.redelivered !== false &&
    task.state === 'running' &&
    event.attempt === task.attempts &&
    event.worker !== undefined &&
    task.worker?.id !== undefined &&
    task.worker.id !== event.worker
  );
}

/** A report of an attempt that succeeded: exit 0, in time, and nothing gitjobs had to say against it. */
export function succeeded(event: FinishedEvent): boolean {
  return event.exitCode === 0 && !event.timedOut && !event.error;
}

function finish(run: RunRecord, task: TaskRecord, event: FinishedEvent, trailers: Trailers, options: ApplyOptions): Applied {
  const ok = succeeded(event);
  const to = ok ? 'succeeded' : 'failed';
  assertTransition(`${run.id}/${task.id}`, 'running', to);
  const timeout = `timeout after ${formatDuration(task.timeoutMs)}`;
  const error = event.error ?? (event.timedOut ? timeout : ok ? undefined : `exit ${event.exitCode}`);
  const next: TaskRecord = {
    ...task,
    state: to,
    finishedAt: event.at,
    exitCode: event.exitCode,
    durationMs: event.durationMs,
    timedOut: event.timedOut,
    stdout: event.stdout,
    outputTruncated: event.truncated,
    worker: workerOf(event),
  };
  for (const k of ['notBefore', 'leaseMs', 'stdoutFile', 'error', 'outputTail', 'cacheKey', 'files'] as const) delete next[k];
  if (error) next.error = error;
  if (ok && options.files) next.files = options.files;
  // What a later task with the same key may take instead of running (only a success is ever reused).
  if (ok && event.cacheKey) next.cacheKey = event.cacheKey;
  const paths = runPaths(run);
  const extra: FileChange[] = [];
  if (paths.layout === 1) {
    next.outputTail = tail(event.output, options.outputTail);
    if (event.stdout.length > STDOUT_INLINE) {
      next.stdoutFile = paths.stdoutFile(task.id);
      extra.push({ path: next.stdoutFile, content: event.stdout });
    }
  } else {
    // The output is in the log; the end of it is kept in the record of a failure, to say why without reading it.
    if (!ok) next.outputTail = tail(event.output, options.outputTail);
    extra.push(...stdoutApart(paths, next, event));
  }
  const attemptsLeft = task.attempts < task.maxAttempts;
  const retry = !ok && attemptsLeft && retryable(next);
  const why = event.timedOut ? timeout : event.error ? event.error.split('\n')[0]!.slice(0, 120) : `exit ${event.exitCode}`;
  const detail = [why, formatDuration(event.durationMs), task.maxAttempts > 1 ? `attempt ${task.attempts}/${task.maxAttempts}` : undefined, attemptsLeft ? notRetriedBecause(next) : undefined].filter(Boolean).join(', ');
  return {
    kind: 'applied',
    task: next,
    retry,
    changes: [taskChange(paths, next), { path: paths.logFile(task.id), content: event.output }, ...extra],
    message: commitMessage(transitionSubject(run.id, task.id, 'running', to, detail), {
      ...trailers,
      ...(ok && event.cacheKey ? { 'Cache-Key': event.cacheKey } : {}),
      ...(next.files ? { 'Files-Commit': next.files.commit } : {}),
    }),
  };
}

/**
 * What an attempt killed by its run's cancellation printed until then: kept
 * as the cancelled task's log, once, in a commit of its own. Not a
 * transition: the task was `cancelled` already when its worker heard of it.
 */
function cancelledOutput(run: RunRecord, task: TaskRecord, event: FinishedEvent, options: ApplyOptions): Applied {
  if (task.state !== 'cancelled' || event.attempt !== task.attempts || task.durationMs !== undefined) {
    return { kind: 'ignored', reason: `output of a cancelled attempt ${event.attempt} while ${task.state} at attempt ${task.attempts}` };
  }
  const paths = runPaths(run);
  const next: TaskRecord = { ...task, durationMs: event.durationMs, outputTruncated: event.truncated, worker: workerOf(event), outputTail: tail(event.output, options.outputTail) };
  const extra = paths.layout === 2 ? stdoutApart(paths, next, event) : [];
  const detail = `output of attempt ${event.attempt} kept, ${formatDuration(event.durationMs)}`;
  return {
    kind: 'applied',
    task: next,
    retry: false,
    changes: [taskChange(paths, next), { path: paths.logFile(task.id), content: event.output }, ...extra],
    message: commitMessage(`${run.id}/${task.id}: cancelled (${detail})`, eventTrailers(run, task, event)),
  };
}

/** Layout 2: stdout needs its own file only when stderr was mixed into the output; the record names it. */
function stdoutApart(paths: RunPaths, next: TaskRecord, event: FinishedEvent): FileChange[] {
  if (event.stdout === event.output) return [];
  next.stdoutFile = paths.stdoutFile(next.id);
  return [{ path: next.stdoutFile, content: event.stdout }];
}
