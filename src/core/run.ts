import { TransitionError } from './errors.js';
import type { Project, RequestedLimits } from './project.js';
import type { ReducerName } from './reduce.js';
import { isFinal, type TaskRecord } from './task.js';

/**
 * The run state machine, in one place, beside the task's (task.ts).
 *
 *   queued -> running                          the first task started
 *   queued | running -> succeeded | failed | cancelled
 *                                              every task is final; the result is in the done repository
 *   rejected                                   the project file could not run; recorded once, never changes
 */
export const RUN_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'rejected'] as const;
export type RunState = (typeof RUN_STATES)[number];

const ALLOWED: Record<RunState, readonly RunState[]> = {
  queued: ['running', 'succeeded', 'failed', 'cancelled'],
  running: ['succeeded', 'failed', 'cancelled'],
  succeeded: [],
  failed: [],
  cancelled: [],
  rejected: [],
};

export function canRunTransition(from: RunState, to: RunState): boolean {
  return ALLOWED[from].includes(to);
}

export function assertRunTransition(run: string, from: RunState, to: RunState): void {
  if (!canRunTransition(from, to)) throw new TransitionError(`${run}: ${from} -> ${to} is not a transition a run can make`);
}

/** What tracking stores for one run: `run.json` in the run's folder (layout.ts). */
export interface RunRecord {
  id: string;
  /** 2 for runs recorded since tracking fans out; absent for the runs recorded before. */
  layout?: 1 | 2;
  /** Layout 2: how many tasks, and how many levels of folders their files fan out into. */
  taskCount?: number;
  taskFanout?: number;
  /** When every first-attempt TODO message of the run was confirmed by the broker. */
  publishedAt?: string;
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
  /** Task ids in the order the result is put together (layout 2 keeps them in `tasks.jsonl`, not in run.json). */
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
  /** Some of its tasks asked for the result cache: the cache's index reads this run's results. */
  cache?: true;
  /** Sent without cache candidates (`--no-cache`): every task ran, whatever the cache held. */
  noCache?: true;
  /** `"fail_fast": true`: the first task that fails for good cancels the rest of the run. */
  failFast?: true;
  /** `"parallel": N`: at most N tasks queued or running at once; the others wait for a slot. */
  parallel?: number;
  /** A run of a scheduled project file: the tick it ran for. */
  scheduledFor?: string;
  /** The task whose stdout is the run's result (`"result"`), instead of the reducer's. */
  resultTask?: string;
}

export function progress(tasks: Iterable<TaskRecord>): { done: number; failed: number; total: number } {
  let done = 0;
  let failed = 0;
  let total = 0;
  for (const t of tasks) {
    total++;
    if (!isFinal(t)) continue;
    done++;
    if (t.state === 'failed' || t.state === 'skipped') failed++;
  }
  return { done, failed, total };
}

/** A run is over once its result is in the done repository, or it was rejected: nothing more happens to it. */
export function isRunFinal(run: RunRecord): boolean {
  return run.state === 'rejected' || run.doneCommit !== undefined;
}

export function allFinal(tasks: readonly TaskRecord[]): boolean {
  return tasks.length > 0 && tasks.every(isFinal);
}
