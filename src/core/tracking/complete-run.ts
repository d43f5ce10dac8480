/**
 * When every task of a run is final: its result for the done repository,
 * and the run's own transitions in tracking.
 */
import { runPaths } from '../layout.js';
import type { FileChange } from '../ports.js';
import { reduce, ReduceError, type ReducerName } from '../reduce.js';
import { allFinal, assertRunTransition, progress, type RunRecord } from '../run.js';
import type { ReusedFrom, TaskRecord } from '../task.js';
import { commitMessage } from '../transition.js';
import { json, runChange, runTrailers, type Commitable } from './records.js';
import { blobId } from '../git-ids.js';

export interface RunResult {
  run: string;
  project: string;
  file: string;
  state: 'succeeded' | 'failed' | 'cancelled';
  reduce: ReducerName;
  /** Set when the result is one task's stdout (`"result": "TASK"`), not the reducer's. */
  resultTask?: string;
  value: unknown;
  error?: string;
  /** `output`: the blob id of the stdout the reducer was given, as tracking holds it (see `gitjobs verify`). */
  /** `files`: what the task left under /out, by path, with each file's blob id (under `<run>/files/<task>/` in done). */
  tasks: { id: string; state: string; exitCode: number | null | undefined; durationMs: number | undefined; attempts: number; error?: string; reusedFrom?: ReusedFrom; cachedFrom?: ReusedFrom; output?: string; files?: Record<string, string> }[];
  commits: { todo: string; config: string | undefined; tracking: string };
  finishedAt: string;
}

/** The first task to start moves the run from queued to running. */
export function runStarted(run: RunRecord): RunRecord | undefined {
  if (run.state !== 'queued') return undefined;
  assertRunTransition(run.id, run.state, 'running');
  return { ...run, state: 'running' };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export interface CompleteOptions {
  /** Bytes of stdout the tasks may give the reducer, all together. */
  resultCap: number;
  /** Set when the collector saw the outputs pass the cap and let them go: how many bytes they came to. */
  outputBytes?: number;
}

/**
 * The result for the done repository and the final run record for tracking.
 * A failed task, outputs past the result cap or a reducer error fail the
 * run; a cancelled task cancels it.
 */
export function completeRun(
  run: RunRecord,
  tasks: TaskRecord[],
  trackingCommit: string,
  now: string,
  options: CompleteOptions = { resultCap: Infinity },
): { result: RunResult; resultChanges: FileChange[]; resultMessage: string; run: RunRecord } {
  if (!allFinal(tasks)) throw new Error(`run ${run.id} is not finished`);
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const ordered = run.tasks.map((id) => byId.get(id)!);
  const failed = ordered.filter((t) => t.state === 'failed');
  const skipped = ordered.filter((t) => t.state === 'skipped');
  const cancelled = ordered.filter((t) => t.state === 'cancelled');
  const reducer = run.reduce ?? 'concat';
  let value: unknown = null;
  let text: string;
  let error: string | undefined;
  // `fail_fast` cancels what is left once a task fails: the run failed, it was not cancelled.
  const failedFast = run.failFast === true && failed.length > 0 && run.cancelled === undefined;
  const isCancelled = !failedFast && (run.cancelled !== undefined || cancelled.length > 0);
  if (isCancelled) {
    error = `cancelled (${run.cancelled ?? 'by request'}): ${ordered.length - cancelled.length} of ${plural(ordered.length, 'task')} had finished`;
    text = `CANCELLED: ${error}\n`;
  } else if (failed.length || skipped.length) {
    error = [
      failed.length ? `${failed.length} of ${plural(ordered.length, 'task')} failed: ${failed.map((t) => `${t.id} (${t.error ?? `exit ${t.exitCode}`})`).join(', ')}` : undefined,
      skipped.length ? `${skipped.length} skipped (${skipped.length > 5 ? `${skipped.slice(0, 5).map((t) => t.id).join(', ')}, …` : skipped.map((t) => t.id).join(', ')})` : undefined,
      failedFast && cancelled.length ? `fail_fast cancelled ${cancelled.length}` : undefined,
    ]
      .filter(Boolean)
      .join('; ');
    text = `FAILED: ${error}\n`;
  } else {
    const bytes = options.outputBytes ?? ordered.reduce((n, t) => n + Buffer.byteLength(t.stdout ?? ''), 0);
    if (bytes > options.resultCap) {
      error = `the tasks' stdout comes to ${bytes} bytes, past the result cap of ${options.resultCap} bytes (GITJOBS_RESULT_CAP)`;
      text = `FAILED: ${error}\n`;
    } else {
      try {
        if (run.resultTask) {
          // The user's own reduce step: what that task printed is the result.
          text = byId.get(run.resultTask)?.stdout ?? '';
          value = text;
        } else {
          const r = reduce(reducer, ordered.map((t) => ({ task: t.id, stdout: t.stdout ?? '' })));
          value = r.value;
          text = r.text;
        }
      } catch (err) {
        // A reducer's own complaint, or anything else it ran into: the run fails saying so, it does not loop.
        error = err instanceof ReduceError ? err.message : `reduce "${reducer}" failed: ${(err as Error).message}`;
        text = `FAILED: ${error}\n`;
      }
    }
  }
  const state = isCancelled ? 'cancelled' : error ? 'failed' : 'succeeded';
  assertRunTransition(run.id, run.state, state);
  const result: RunResult = {
    run: run.id,
    project: run.project,
    file: run.file,
    state,
    reduce: reducer,
    ...(run.resultTask ? { resultTask: run.resultTask } : {}),
    value,
    ...(error ? { error } : {}),
    tasks: ordered.map((t) => ({ id: t.id, state: t.state, exitCode: t.exitCode, durationMs: t.durationMs, attempts: t.attempts, ...(t.error ? { error: t.error } : {}), ...(t.reusedFrom ? { reusedFrom: t.reusedFrom } : {}), ...(t.cachedFrom ? { cachedFrom: t.cachedFrom } : {}), ...(t.stdout !== undefined ? { output: blobId(t.stdout) } : {}), ...(t.files && t.state === 'succeeded' ? { files: Object.fromEntries(t.files.entries.map((e) => [e.path, e.blob])) } : {}) })),
    commits: { todo: run.todoCommit, config: run.configCommit, tracking: trackingCommit },
    finishedAt: now,
  };
  const p = progress(ordered);
  const paths = runPaths(run);
  return {
    result,
    resultChanges: [
      { path: paths.resultJson, content: json(result) },
      { path: paths.resultText, content: text },
    ],
    resultMessage: commitMessage(`${run.id}: ${state} (${p.done - p.failed}/${p.total} tasks succeeded)`, { ...runTrailers(run), 'Tracking-Commit': trackingCommit }, error),
    run: { ...run, state, finishedAt: now, ...(error ? { error } : {}) },
  };
}

/** The run's last commit in tracking: its final state, pointing at its result in done. */
export function runFinishedCommit(run: RunRecord, doneCommit: string, from: string = 'running'): Commitable {
  const final: RunRecord = { ...run, doneCommit };
  return {
    changes: [runChange(runPaths(run), final)],
    message: commitMessage(`${run.id}: ${from} -> ${run.state}${run.error ? ` (${run.error.slice(0, 120)})` : ''}`, { ...runTrailers(run), 'Done-Commit': doneCommit }),
  };
}

export { runChange };
