import { TransitionError } from './errors.js';
import { retryable, type RetryOn } from './retry.js';

/**
 * The task state machine, in one place.
 *
 *   queued -> running -> succeeded
 *                     -> failed      (final once attempts are used up, or when its retry policy does not retry it)
 *   queued -> succeeded              (reused: it succeeded in the run this one re-runs)
 *   running -> running               (the attempt was redelivered to another worker)
 *   failed -> queued                 (a retry: a new attempt)
 *   queued | running | failed -> cancelled   (the run was cancelled; final)
 *   waiting -> queued                (what it needs has succeeded, and the run's `parallel` has a slot)
 *   waiting -> skipped               (something it needs failed, or was skipped or cancelled; final)
 *   waiting -> cancelled
 */
export const TASK_STATES = ['waiting', 'queued', 'running', 'succeeded', 'failed', 'skipped', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];

const ALLOWED: Record<TaskState, readonly TaskState[]> = {
  // A task with `needs` starts here, and is queued once all of them have succeeded.
  waiting: ['queued', 'skipped', 'cancelled'],
  // queued -> succeeded: a re-run of the failed part reuses what succeeded (its commit names where from).
  queued: ['running', 'succeeded', 'cancelled'],
  // running -> running: another worker took the attempt over (its first worker stopped reporting).
  running: ['running', 'succeeded', 'failed', 'cancelled'],
  succeeded: [],
  failed: ['queued', 'cancelled'],
  skipped: [],
  cancelled: [],
};

export function canTransition(from: TaskState, to: TaskState): boolean {
  return ALLOWED[from].includes(to);
}

export function assertTransition(task: string, from: TaskState, to: TaskState): void {
  if (!canTransition(from, to)) throw new TransitionError(`${task}: ${from} -> ${to} is not a transition a task can make`);
}

/** What tracking stores for one task: `projects/<run>/tasks/<task>.json`. */
export interface TaskRecord {
  run: string;
  id: string;
  state: TaskState;
  /** Attempts started so far (1 once the first attempt is running). */
  attempts: number;
  maxAttempts: number;
  /** Only these failures are retried (see retry.ts); without it, every failure is. */
  retryOn?: RetryOn;
  /** The wait before the first retry, doubling after; without it, the operator's backoff. */
  backoffMs?: number;
  /** Tasks of the run that must succeed before this one is queued (`waiting` until then). */
  needs?: string[];
  /** `"out"`: it may write this many bytes under /out, committed to done when it succeeds. */
  outBytes?: number;
  /** What it left under /out, committed to done (core/files.ts). */
  files?: import('./files.js').TaskFiles;
  /** When it went from waiting to queued (the collector sent its message, not the dispatcher). */
  releasedAt?: string;
  argv: string[];
  timeoutMs: number;
  queuedAt: string;
  /** A retry waits until then (exponential backoff). */
  notBefore?: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number | null;
  durationMs?: number;
  timedOut?: boolean;
  /** Why the task failed when it is not just its exit code (timeout, image build, worker error). */
  error?: string;
  /** Where it ran: host, image id (and the base image's id it was built on), worker process. */
  worker?: { host: string; image: string; base?: string; id?: string };
  /** A task not run here: its result is the one recorded for `run/task` in tracking at `commit`. */
  reusedFrom?: ReusedFrom;
  /** Its result may come from the result cache (the project or task said `"cache": true`). */
  cache?: true;
  /** The result cache's key of the attempt that succeeded (core/cache-key.ts): what a later task must match to reuse it. */
  cacheKey?: string;
  /** A result from the cache: no container ran; `run/task` at `commit` did, with the same key. */
  cachedFrom?: ReusedFrom;
  /** Set when the running attempt is held by heartbeats rather than an unacked message. */
  leaseMs?: number;
  /** The last few KiB of stdout and stderr; the whole is in `logs/<task>.log`. */
  outputTail?: string;
  /** Whole stdout, for the reducer; when large it is in `stdoutFile` instead. */
  stdout?: string;
  stdoutFile?: string;
  outputTruncated?: boolean;
}

export interface ReusedFrom {
  run: string;
  task: string;
  /** A tracking commit at which that task is recorded as succeeded. */
  commit: string;
}

/** A final task will not change again: its run can be reduced once all are final. */
export function isFinal(task: Pick<TaskRecord, 'state' | 'attempts' | 'maxAttempts' | 'retryOn' | 'timedOut' | 'exitCode'>): boolean {
  return task.state === 'succeeded' || task.state === 'cancelled' || task.state === 'skipped' || (task.state === 'failed' && (task.attempts >= task.maxAttempts || !retryable(task)));
}
