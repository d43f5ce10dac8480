/**
 * A run's tasks as a graph: `needs` point from a task to those that must
 * succeed before it is queued. Waiting tasks are decided here, as pure
 * functions over the tasks' states; the collector commits the decisions.
 */
import { isFinal, type TaskRecord } from './task.js';

export type WaitingDecision = { kind: 'release'; task: TaskRecord } | { kind: 'skip'; task: TaskRecord; because: TaskRecord };

/** For each task, the tasks that need it. */
export function dependentsOf(tasks: Iterable<Pick<TaskRecord, 'id' | 'needs'>>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const t of tasks) {
    for (const n of t.needs ?? []) {
      const list = out.get(n);
      if (list) list.push(t.id);
      else out.set(n, [t.id]);
    }
  }
  return out;
}

/**
 * What becomes of a waiting task now: released once everything it needs
 * has succeeded, skipped as soon as one of them ends any other way (failed
 * for good, skipped, cancelled), else nothing yet.
 */
export function decideWaiting(task: TaskRecord, tasks: ReadonlyMap<string, TaskRecord>): WaitingDecision | undefined {
  if (task.state !== 'waiting') return undefined;
  let all = true;
  for (const id of task.needs ?? []) {
    const need = tasks.get(id);
    // A need the run does not have (a re-run of some tasks only) is no reason to wait.
    if (!need) continue;
    if (need.state === 'succeeded') continue;
    if (isFinal(need)) return { kind: 'skip', task, because: need };
    all = false;
  }
  return all ? { kind: 'release', task } : undefined;
}
