/**
 * Which failures are worth another attempt. `"retries": N` retries every
 * failure; `"retry": {...}` (on a project or on one task) can say which:
 *
 *   "retry": {"max": 3, "on_exit": [75, 137], "on_timeout": true, "backoff": "5s"}
 *
 * With `on_exit` or `on_timeout`, a failure is retried only when it exited
 * with one of those codes, or timed out and `on_timeout` is true. A failure
 * that is not the task's own doing (its image could not be built, the
 * executor failed, its worker was lost) is always retried while attempts
 * are left. `backoff` is the wait before the first retry; it doubles for
 * each one after.
 */
import { z } from 'zod';
import { parseDuration } from './duration.js';
import type { TaskRecord } from './task.js';

export const MAX_RETRIES = 10;

export interface RetryPolicy {
  /** Retries after the first attempt. */
  max: number;
  /** When given, only these conditions are retried (see above). */
  on?: RetryOn;
  backoffMs?: number;
}

export interface RetryOn {
  exit?: number[];
  timeout?: boolean;
}

export const retrySchema = z
  .strictObject({
    max: z.number({ error: 'expected a whole number of retries' }).int().min(0).max(MAX_RETRIES, { error: `at most ${MAX_RETRIES} retries` }),
    on_exit: z.array(z.number().int().min(1, { error: 'an exit code to retry on is 1 to 255 (0 is success)' }).max(255, { error: 'an exit code is at most 255' })).min(1, { error: 'list at least one exit code, or leave on_exit out' }).optional(),
    on_timeout: z.boolean().optional(),
    backoff: z
      .union([z.string(), z.number()])
      .refine((v) => parseDuration(v) !== undefined, { error: 'expected a duration such as "500ms", "5s", "1m" or a number of seconds' })
      .refine((v) => (parseDuration(v) ?? 0) <= 3_600_000, { error: 'a backoff of at most 1h' })
      .optional(),
  });

export function retryPolicy(r: z.infer<typeof retrySchema>): RetryPolicy {
  const on: RetryOn = {};
  if (r.on_exit) on.exit = [...new Set(r.on_exit)].sort((a, b) => a - b);
  if (r.on_timeout !== undefined) on.timeout = r.on_timeout;
  return { max: r.max, ...(r.on_exit || r.on_timeout !== undefined ? { on } : {}), ...(r.backoff !== undefined ? { backoffMs: parseDuration(r.backoff)! } : {}) };
}

/** Whether the task's last failure is one its policy retries (attempts left or not). */
export function retryable(task: Pick<TaskRecord, 'retryOn' | 'timedOut' | 'exitCode'>): boolean {
  const on = task.retryOn;
  if (!on) return true;
  if (task.timedOut) return on.timeout === true;
  if (typeof task.exitCode === 'number' && task.exitCode !== 0) return on.exit?.includes(task.exitCode) ?? false;
  return true;
}

/** Why a failure is not retried, for its transition's commit: `exit 1 is not retried (on_exit 75, 137)`. */
export function notRetriedBecause(task: Pick<TaskRecord, 'retryOn' | 'timedOut' | 'exitCode'>): string | undefined {
  if (retryable(task) || !task.retryOn) return undefined;
  const on = [task.retryOn.exit ? `on_exit ${task.retryOn.exit.join(', ')}` : undefined, task.retryOn.timeout ? 'on_timeout' : undefined].filter(Boolean).join('; ');
  return `${task.timedOut ? 'a timeout' : `exit ${task.exitCode}`} is not retried (${on || 'on_timeout false'})`;
}

/** The wait before retrying after `failedAttempt`: the task's own backoff, doubling, or the operator's. */
export function backoffFor(task: Pick<TaskRecord, 'backoffMs'>, failedAttempt: number, operator: (failedAttempt: number) => number): number {
  if (task.backoffMs === undefined) return operator(failedAttempt);
  return Math.min(3_600_000, task.backoffMs * 2 ** Math.max(0, failedAttempt - 1));
}
