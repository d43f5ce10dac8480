/**
 * Two runs side by side, task by task (`gitjobs diff RUN1 RUN2`): what
 * changed in state, exit code, output and image, with the durations beside.
 * Outputs are compared by blob id, as Git names them: the same bytes are
 * the same id, whichever run made them (a reused result keeps its id).
 */
import type { TaskRecord } from './task.js';

/** What is compared of a task in one run. */
export interface TaskSide {
  state: TaskRecord['state'];
  exitCode: number | null | undefined;
  durationMs: number | undefined;
  /** Blob id of the output its reducer reads (stdout, or the log). */
  output: string | undefined;
  image: string | undefined;
  attempts: number;
  reusedFrom?: string;
  /** A result taken from the result cache: the run and task that computed it. */
  cachedFrom?: string;
}

export const COMPARED = ['state', 'exitCode', 'output', 'image'] as const;
export type Compared = (typeof COMPARED)[number];

export interface TaskDiff {
  task: string;
  a?: TaskSide;
  b?: TaskSide;
  /** What differs; empty when the task is the same in both (durations aside). */
  changed: Compared[];
}

export interface RunDiff {
  a: string;
  b: string;
  tasks: TaskDiff[];
  /** Tasks that differ, or are in one run only. */
  differing: number;
}

export function sideOf(task: TaskRecord, output: string | undefined): TaskSide {
  return {
    state: task.state,
    exitCode: task.exitCode,
    durationMs: task.durationMs,
    output,
    image: task.worker?.image,
    attempts: task.attempts,
    ...(task.reusedFrom ? { reusedFrom: `${task.reusedFrom.run}/${task.reusedFrom.task}` } : {}),
    ...(task.cachedFrom ? { cachedFrom: `${task.cachedFrom.run}/${task.cachedFrom.task}` } : {}),
  };
}

/** Task by task, in the first run's order, then the tasks only the second has. */
export function diffRuns(a: { id: string; tasks: Map<string, TaskSide> }, b: { id: string; tasks: Map<string, TaskSide> }): RunDiff {
  const ids = [...a.tasks.keys(), ...[...b.tasks.keys()].filter((k) => !a.tasks.has(k))];
  const tasks = ids.map((task): TaskDiff => {
    const x = a.tasks.get(task);
    const y = b.tasks.get(task);
    const changed = x && y ? COMPARED.filter((k) => (x[k] ?? null) !== (y[k] ?? null)) : [];
    return { task, ...(x ? { a: x } : {}), ...(y ? { b: y } : {}), changed };
  });
  return { a: a.id, b: b.id, tasks, differing: tasks.filter((t) => !t.a || !t.b || t.changed.length).length };
}
