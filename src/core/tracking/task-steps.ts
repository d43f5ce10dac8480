/** Steps the collector takes on a task by itself: a retry after a failed attempt, and cancellation. */
import { formatDuration } from '../duration.js';
import { runPaths } from '../layout.js';
import type { RunRecord } from '../run.js';
import { assertTransition, type TaskRecord } from '../task.js';
import { commitMessage, transitionSubject } from '../transition.js';
import { runTrailers, taskChange, type Commitable } from './records.js';

/** A failed attempt with attempts left goes back to `queued`, to be sent again once `delayMs` has passed. */
export function requeue(run: RunRecord, task: TaskRecord, now: string, delayMs = 0): { task: TaskRecord } & Commitable {
  assertTransition(`${run.id}/${task.id}`, task.state, 'queued');
  const next: TaskRecord = { ...task, state: 'queued', queuedAt: now, notBefore: new Date(Date.parse(now) + delayMs).toISOString() };
  const detail = `retry: attempt ${task.attempts + 1}/${task.maxAttempts} in ${formatDuration(delayMs)}`;
  return { task: next, changes: [taskChange(runPaths(run), next)], message: commitMessage(transitionSubject(run.id, task.id, 'failed', 'queued', detail), runTrailers(run)) };
}

/** A run is cancelled: each unfinished task ends `cancelled`, one commit each. */
export function cancelTask(run: RunRecord, task: TaskRecord, reason: string, now: string): { task: TaskRecord } & Commitable {
  assertTransition(`${run.id}/${task.id}`, task.state, 'cancelled');
  const next: TaskRecord = { ...task, state: 'cancelled', finishedAt: now, error: `cancelled: ${reason}` };
  delete next.notBefore;
  return { task: next, changes: [taskChange(runPaths(run), next)], message: commitMessage(transitionSubject(run.id, task.id, task.state, 'cancelled', reason), runTrailers(run)) };
}

/** What it needs has succeeded: `waiting -> queued`, to be sent to TODO. */
export function releaseTask(run: RunRecord, task: TaskRecord, now: string): { task: TaskRecord } & Commitable {
  assertTransition(`${run.id}/${task.id}`, task.state, 'queued');
  const next: TaskRecord = { ...task, state: 'queued', queuedAt: now, releasedAt: now };
  const needs = task.needs ?? [];
  const detail = [
    needs.length ? `needs met: ${needs.length > 3 ? `${needs.slice(0, 3).join(', ')} and ${needs.length - 3} more` : needs.join(', ')}` : undefined,
    run.parallel ? `a slot of parallel ${run.parallel}` : undefined,
  ]
    .filter(Boolean)
    .join('; ');
  return { task: next, changes: [taskChange(runPaths(run), next)], message: commitMessage(transitionSubject(run.id, task.id, 'waiting', 'queued', detail), runTrailers(run)) };
}

/** Something it needs did not succeed: `waiting -> skipped` (final), naming what and how it ended. */
export function skipTask(run: RunRecord, task: TaskRecord, because: Pick<TaskRecord, 'id' | 'state'>, now: string): { task: TaskRecord } & Commitable {
  assertTransition(`${run.id}/${task.id}`, task.state, 'skipped');
  const why = `needs ${because.id}, which ${because.state === 'skipped' ? 'was skipped' : because.state === 'cancelled' ? 'was cancelled' : 'failed'}`;
  const next: TaskRecord = { ...task, state: 'skipped', finishedAt: now, error: `skipped: ${why}` };
  return { task: next, changes: [taskChange(runPaths(run), next)], message: commitMessage(transitionSubject(run.id, task.id, 'waiting', 'skipped', why), runTrailers(run)) };
}
