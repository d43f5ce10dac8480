/**
 * How run and task records become file changes: one place for the shape of
 * tracking's files, so that every step writes them alike.
 *
 * Layout 2 keeps what never changes apart from what does: a task's command,
 * timeout and attempts are in the run's `tasks.jsonl`, written once; its
 * `<task>.json` holds only its state, so that each transition writes a few
 * hundred bytes whatever the command. Layout 1 (older runs) is written as
 * it always was.
 */
import type { RunPaths } from '../layout.js';
import type { FileChange } from '../ports.js';
import type { RunRecord } from '../run.js';
import type { TaskRecord } from '../task.js';

/** A file change plus the commit message that goes with it: what a tracking step hands the store. */
export interface Commitable {
  changes: FileChange[];
  message: string;
}

export const json = (value: unknown): string => JSON.stringify(value, null, 2) + '\n';

/** Layout 1: stdout up to this size stays in the task record; larger goes to its own file. */
export const STDOUT_INLINE = 64 * 1024;

/** What of a task never changes once it is queued: layout 2 writes it once, in `tasks.jsonl`. */
export type TaskSpec = Pick<TaskRecord, 'id' | 'argv' | 'timeoutMs' | 'maxAttempts' | 'retryOn' | 'backoffMs' | 'cache' | 'needs' | 'outBytes'>;

/** The task's file: its state (layout 2), or its whole record without stdout kept elsewhere (layout 1). */
export function taskChange(paths: RunPaths, task: TaskRecord): FileChange {
  const { stdout, ...rest } = task;
  if (paths.layout === 1) return { path: paths.taskFile(task.id), content: json(task.stdoutFile ? rest : task) };
  const { run, argv, timeoutMs, maxAttempts, retryOn, backoffMs, cache, needs, outBytes, ...state } = rest;
  return { path: paths.taskFile(task.id), content: json(state) };
}

/** The run's file; layout 2 leaves the task list out (it is in `tasks.jsonl`). */
export function runChange(paths: RunPaths, run: RunRecord): FileChange {
  if (paths.layout === 1) return { path: paths.runFile, content: json(run) };
  const { tasks, ...rest } = run;
  return { path: paths.runFile, content: json(rest) };
}

/** Layout 2's `tasks.jsonl`: each task's id, command, timeout, attempts and retry policy, one line each, in result order. */
export function taskListChange(paths: RunPaths, tasks: TaskRecord[]): FileChange {
  const lines = tasks.map((t) =>
    JSON.stringify({
      id: t.id,
      argv: t.argv,
      timeoutMs: t.timeoutMs,
      maxAttempts: t.maxAttempts,
      ...(t.retryOn ? { retryOn: t.retryOn } : {}),
      ...(t.backoffMs !== undefined ? { backoffMs: t.backoffMs } : {}),
      ...(t.cache ? { cache: t.cache } : {}),
      ...(t.needs?.length ? { needs: t.needs } : {}),
      ...(t.outBytes ? { outBytes: t.outBytes } : {}),
    } satisfies TaskSpec),
  );
  return { path: paths.taskList!, content: lines.join('\n') + '\n' };
}

export function parseTaskList(text: string): TaskSpec[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as TaskSpec);
}

/** The last `bytes` characters of a text, marked as cut when it was. */
export function tail(text: string, bytes: number): string {
  return text.length <= bytes ? text : '…' + text.slice(text.length - bytes);
}

/** The trailers that tie a step to the run's todo and config commits. */
export function runTrailers(run: Pick<RunRecord, 'todoCommit' | 'configCommit'>): { 'Todo-Commit': string; 'Config-Commit': string | undefined } {
  return { 'Todo-Commit': run.todoCommit, 'Config-Commit': run.configCommit };
}
