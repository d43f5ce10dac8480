import type { Project, RequestedLimits } from './project.js';
import type { ReducerName } from './reduce.js';
import { isFinal, type TaskRecord } from './task.js';

export type RunState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'rejected';

/** What tracking stores for one run: `projects/<run>/run.json`. */
export interface RunRecord {
  id: string;
  project: string;
  /** The project file in the todo repository. */
  file: string;
  format?: Project['format'];
  state: RunState;
  todoCommit: string;
  configCommit?: string;
  worker?: string;
  reduce?: ReducerName;
  /** Lower resource limits the project asked for (the operator's apply otherwise). */
  limits?: RequestedLimits;
  /** Task ids in the order the result is put together. */
  tasks: string[];
  createdAt: string;
  finishedAt?: string;
  /** For a rejected run: what is wrong, naming the file and JSON paths. */
  error?: string;
  problems?: { path: string; message: string }[];
  /** The done-repository commit holding the result, once there is one. */
  doneCommit?: string;
  /** Why the run was cancelled, when it was. */
  cancelled?: string;
  /** The run this one runs again (same project file at the same todo commit). */
  rerunOf?: string;
}

export function progress(tasks: readonly TaskRecord[]): { done: number; failed: number; total: number } {
  let done = 0;
  let failed = 0;
  for (const t of tasks) {
    if (isFinal(t)) done++;
    if (isFinal(t) && t.state === 'failed') failed++;
  }
  return { done, failed, total: tasks.length };
}

/** A run is over once its result is in the done repository, or it was rejected: nothing more happens to it. */
export function isRunFinal(run: RunRecord): boolean {
  return run.state === 'rejected' || run.doneCommit !== undefined;
}

export function allFinal(tasks: readonly TaskRecord[]): boolean {
  return tasks.length > 0 && tasks.every(isFinal);
}
