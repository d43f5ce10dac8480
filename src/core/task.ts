import { TransitionError } from './errors.js';

/**
 * The task state machine, in one place.
 *
 *   queued -> running -> succeeded
 *                     -> failed      (final once attempts are used up)
 *   running -> running               (the attempt was redelivered to another worker)
 *   failed -> queued                 (a retry: a new attempt)
 *   queued | running | failed -> cancelled   (the run was cancelled; final)
 */
export const TASK_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];

const ALLOWED: Record<TaskState, readonly TaskState[]> = {
  queued: ['running', 'cancelled'],
  // running -> running: another worker took the attempt over (its first worker stopped reporting).
  running: ['running', 'succeeded', 'failed', 'cancelled'],
  succeeded: [],
  failed: ['queued', 'cancelled'],
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
  worker?: { host: string; image: string; id?: string };
  /** Set when the running attempt is held by heartbeats rather than an unacked message. */
  leaseMs?: number;
  /** The last few KiB of stdout and stderr; the whole is in `logs/<task>.log`. */
  outputTail?: string;
  /** Whole stdout, for the reducer; when large it is in `stdoutFile` instead. */
  stdout?: string;
  stdoutFile?: string;
  outputTruncated?: boolean;
}

/** A final task will not change again: its run can be reduced once all are final. */
export function isFinal(task: Pick<TaskRecord, 'state' | 'attempts' | 'maxAttempts'>): boolean {
  return task.state === 'succeeded' || task.state === 'cancelled' || (task.state === 'failed' && task.attempts >= task.maxAttempts);
}
