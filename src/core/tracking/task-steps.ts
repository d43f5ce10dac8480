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
