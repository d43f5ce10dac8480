/**
 * A re-run of a run's failed part (`gitjobs rerun RUN --failed`) does not
 * run again what succeeded (and a task whose key the result cache holds
 * does not run at all): each such task is recorded `queued ->
 * succeeded` in one commit of its own, naming the run, task and tracking
 * commit its result comes from, with that result's log (and stdout) copied
 * into the new run, so that the new run's result is whole and every reader
 * finds it where it finds any other.
 */
import { formatDuration } from '../duration.js';
import { TransitionError } from '../errors.js';
import { runPaths } from '../layout.js';
import type { RunRecord } from '../run.js';
import { assertTransition, type ReusedFrom, type TaskRecord } from '../task.js';
import { commitMessage, transitionSubject } from '../transition.js';
import { runTrailers, taskChange, type Commitable } from './records.js';

/** What a reused task brings from the run it comes from. */
export interface ReuseSource {
  from: ReusedFrom;
  /** Its record there (succeeded). */
  record: TaskRecord;
  /** Its log, and its stdout (the same text unless stderr was mixed into the log). */
  log: string;
  stdout: string;
}

/**
 * A result from the result cache: the worker found an earlier result with
 * the task's own key and ran nothing. Recorded as a reuse is, naming the
 * key and where the result came from.
 */
export interface CacheHit {
  key: string;
  /** The attempt that took it, and the worker that computed the key. */
  attempt: number;
  host: string;
}

export function reuseTask(run: RunRecord, queued: TaskRecord, source: ReuseSource, now: string, hit?: CacheHit): { task: TaskRecord } & Commitable {
  if (queued.state !== 'queued') throw new TransitionError(`${run.id}/${queued.id}: only a queued task reuses a result; it is ${queued.state}`);
  assertTransition(`${run.id}/${queued.id}`, queued.state, 'succeeded');
  const { record, from } = source;
  const task: TaskRecord = {
    ...queued,
    state: 'succeeded',
    finishedAt: now,
    exitCode: record.exitCode ?? 0,
    ...(record.durationMs !== undefined ? { durationMs: record.durationMs } : {}),
    ...(record.worker ? { worker: record.worker } : {}),
    ...(record.outputTruncated !== undefined ? { outputTruncated: record.outputTruncated } : {}),
    // Its files stay where they were committed; the run's result copies them into its own folder.
    ...(record.files ? { files: record.files } : {}),
    ...(hit ? { cachedFrom: from, cacheKey: hit.key, attempts: hit.attempt } : { reusedFrom: from }),
  };
  const paths = runPaths(run);
  const changes = [{ path: paths.logFile(task.id), content: source.log }];
  if (source.stdout !== source.log) {
    task.stdoutFile = paths.stdoutFile(task.id);
    changes.push({ path: task.stdoutFile, content: source.stdout });
  }
  const ran = record.durationMs !== undefined ? `, ran ${formatDuration(record.durationMs)}` : '';
  const where = `${from.run}/${from.task} at ${from.commit.slice(0, 7)}`;
  const detail = hit ? `from cache: ${where}${ran} there, key ${hit.key.slice(0, 12)}, no container` : `reused from ${where}${ran}`;
  const trailers = hit
    ? { ...runTrailers(run), 'Worker-Host': hit.host, 'Cached-From': `${from.run}/${from.task}@${from.commit}`, 'Cache-Key': hit.key }
    : { ...runTrailers(run), 'Reused-From': `${from.run}/${from.task}@${from.commit}` };
  return {
    task,
    changes: [taskChange(paths, task), ...changes],
    message: commitMessage(transitionSubject(run.id, task.id, 'queued', 'succeeded', detail), trailers),
  };
}
