/**
 * One project file at one todo commit becomes one run: a commit in tracking
 * records it queued with its tasks (or rejected, naming the file, the JSON
 * path and the rule), then one TODO message per task is published.
 */
import { todoFor } from '../core/channels.js';
import { sendWithInputs } from '../core/inputs.js';
import { isoAt } from '../core/clock.js';
import { ProjectError, SizeLimitError } from '../core/errors.js';
import { runIdFor } from '../core/ids.js';
import { candidateRunFiles, runPaths } from '../core/layout.js';
import { commitMessage } from '../core/transition.js';
import { json, runTrailers } from '../core/tracking/records.js';
import type { Logger } from '../core/logger.js';
import type { Clock, GitStore, Queue, RunObserver } from '../core/ports.js';
import { parseProject, PROJECT_LIMITS, type Project } from '../core/project.js';
import type { Settings } from '../core/settings.js';
import { queuedRun, rejectedRun } from '../core/tracking/queue-run.js';
import { reuseTask, type ReuseSource } from '../core/tracking/reuse.js';
import { candidatesFor, type ResultCache } from '../core/result-cache.js';
import { scheduledRunId } from '../core/ids.js';
import { scheduleFileOf } from '../core/layout.js';
import { nextTick, parseCron } from '../core/cron.js';
import { scheduleRecorded, tickTaken, type ScheduleRecord } from '../core/tracking/schedule.js';

/** Project-file bytes one push may carry; files past it are refused (and can be pushed again on their own). */
export const PUSH_BYTES = 16 * 1024 * 1024;

export type DispatchOutcome =
  /** `tasks` sent to run; `reused`, in a re-run of the failed part, recorded from the run it re-runs. */
  | { file: string; run: string; outcome: 'queued'; tasks: number; reused?: number }
  | { file: string; run: string; outcome: 'rejected'; error: string }
  | { file: string; run: string; outcome: 'duplicate' }
  /** A file with "schedule": recorded, to run at its ticks (`next`, none if the schedule never fires). */
  | { file: string; run?: undefined; outcome: 'scheduled'; schedule: string; next?: string };

export interface RecorderContext {
  store: GitStore;
  queue: Queue;
  settings: Settings;
  /** Clone URL of the config repository, as workers will fetch it. */
  configUrl: string;
  clock: Clock;
  log: Logger;
  observer?: RunObserver;
  /** The result cache's index: tasks that ask for the cache are sent with the earlier results they may take. */
  resultCache?: ResultCache;
  /** A schedule was recorded or ended (the scheduler looks again). */
  onSchedule?: () => void;
}

/** What the files of one push have used of PUSH_BYTES so far. */
export class PushBudget {
  private used = 0;

  /** Throws a ProjectError once the push has carried more than PUSH_BYTES of project files. */
  take(file: string, bytes: number): void {
    this.used += Math.min(bytes, PROJECT_LIMITS.fileBytes + 1);
    if (bytes <= PROJECT_LIMITS.fileBytes && this.used > PUSH_BYTES) {
      throw new ProjectError(file, [{ path: '$', message: `the push carries more than ${PUSH_BYTES} bytes of project files; this one is past the limit, push it again on its own` }]);
    }
  }
}

export interface RecordOptions {
  file: string;
  todoCommit: string;
  configCommit: string | undefined;
  budget: PushBudget;
  /** For a re-run: its own id, and the run it repeats. */
  rerun?: { runId: string; rerunOf: string };
  /** For a re-run of the failed part: the tasks not run again, by id, with the results they reuse. */
  reuse?: ReadonlyMap<string, ReuseSource>;
  /** For a re-run of some tasks: the run has only these. */
  only?: ReadonlySet<string>;
  /** Recorded as rejected with these problems, without reading the file (a rule about the whole push). */
  refused?: ProjectError;
  /** `--no-cache`: no task takes a result from the cache (their results are still recorded for later runs). */
  noCache?: boolean;
  /** A run of a scheduled file at one tick (scheduler.ts): the schedule as tracking has it, and the tick. */
  tick?: { schedule: ScheduleRecord; at: string };
}

/**
 * Records the run once: a second call for the same (file, commit) finds it
 * and says `duplicate`. Throws a ConflictError when another writer recorded
 * it between the check and the commit (the caller checks again).
 */
export async function recordRun(ctx: RecorderContext, options: RecordOptions): Promise<DispatchOutcome> {
  const { store, settings } = ctx;
  const { file, todoCommit, configCommit, rerun } = options;
  const runId = rerun?.runId ?? (options.tick ? scheduledRunId(file, todoCommit, options.tick.at) : runIdFor(file, todoCommit));
  const rerunOf = rerun ? { rerunOf: rerun.rerunOf } : {};
  const log = ctx.log.child({ run: runId });
  const tracking = settings.repos.tracking;
  // A run with this id, recorded in either layout, is this run: never record it twice.
  const runFiles = candidateRunFiles(runId).map((c) => c.runFile);
  const head = await store.head(tracking);
  if (head && (await Promise.all(runFiles.map((f) => store.fileSize(tracking, head, f)))).some((s) => s !== undefined)) {
    log.info({ file }, 'run already recorded; duplicate push ignored');
    return { file, run: runId, outcome: 'duplicate' };
  }
  const now = isoAt(ctx.clock);
  let project: Project;
  try {
    if (options.refused) throw options.refused;
    project = await readProject(ctx, options);
    if (options.only) project = { ...project, tasks: project.tasks.filter((t) => options.only!.has(t.id)) };
  } catch (err) {
    if (!(err instanceof ProjectError)) throw err;
    const rejected = rejectedRun({ runId, file, problems: [...err.problems], todoCommit, now, ...rerunOf });
    await store.commit(tracking, { changes: rejected.changes, message: rejected.message, absent: runFiles });
    log.warn({ file, error: rejected.run.error }, 'project rejected');
    ctx.observer?.runRejected?.({ id: runId, todoCommit, ...(rejected.run.error ? { error: rejected.run.error } : {}) });
    return { file, run: runId, outcome: 'rejected', error: rejected.run.error! };
  }
  // Pushed with a schedule: recorded to run at its ticks, not now. (A re-run, or a tick, runs.)
  const scheduleFile = scheduleFileOf(file);
  const wasScheduled = !options.tick && head !== undefined && (await store.fileSize(tracking, head, scheduleFile)) !== undefined;
  if (project.schedule && !rerun && !options.tick) {
    const record: ScheduleRecord = { file, todoCommit, schedule: project.schedule, since: now };
    const next = nextTick(parseCron(project.schedule), ctx.clock.now());
    const nextIso = next === undefined ? undefined : new Date(next).toISOString();
    await store.commit(tracking, scheduleRecorded(record, nextIso));
    log.info({ file, schedule: project.schedule, next: nextIso }, 'project scheduled');
    ctx.onSchedule?.();
    return { file, outcome: 'scheduled', schedule: project.schedule, ...(nextIso ? { next: nextIso } : {}) };
  }
  // Pushed again without a schedule: the run's commit ends it.
  const endsSchedule = wasScheduled && !rerun;
  const queued = queuedRun({
    runId,
    file,
    project,
    todoCommit,
    configCommit: configCommit!,
    now,
    ...rerunOf,
    ...(options.noCache ? { noCache: true } : {}),
    ...(options.reuse ? { satisfied: new Set(options.reuse.keys()) } : {}),
    ...(options.tick ? { scheduledFor: options.tick.at } : {}),
    ...(endsSchedule ? { note: `Its schedule ended: ${file} was pushed without "schedule".` } : {}),
  });
  const extra = options.tick ? [tickTaken(options.tick.schedule, options.tick.at)] : endsSchedule ? [{ path: scheduleFile, content: null }] : [];
  await store.commit(tracking, { changes: [...queued.changes, ...extra], message: queued.message, absent: runFiles });
  if (endsSchedule) ctx.onSchedule?.();
  ctx.observer?.runQueued?.({ id: runId, todoCommit, taskCount: queued.tasks.length });
  // What the run re-runs reuses is recorded (one commit each, written as a group), and only the rest is sent;
  // a task that waits on others is sent by the collector once they have succeeded.
  const toRun = queued.tasks.filter((t) => !options.reuse?.has(t.id) && t.state === 'queued');
  const reused = queued.tasks.filter((t) => options.reuse?.has(t.id)).map((t) => reuseTask(queued.run, t, options.reuse!.get(t.id)!, now));
  if (reused.length) await Promise.all(reused.map((r) => store.commit(tracking, { changes: r.changes, message: r.message })));
  const candidates = await candidatesFor(ctx.resultCache, queued.run, log);
  // Publishes go out together and are confirmed together, not one round trip each.
  // A task with needs is sent with their outputs as inputs (a re-run that reuses what it needs); the rest as they are.
  await Promise.all(toRun.map((task) => sendWithInputs(ctx.queue, store, settings.repos, todoFor(queued.run, task, settings.limits, ctx.configUrl, candidates(task)))));
  // What recovery needs to know: every first attempt is with the broker, so it need not send them again.
  const paths = runPaths(queued.run);
  const n = toRun.length;
  await store
    .commit(tracking, {
      changes: [{ path: paths.publishedFile!, content: json({ at: isoAt(ctx.clock), messages: n, queue: settings.queues.todo }) }],
      message: commitMessage(`${runId}: published (${n} TODO message${n === 1 ? '' : 's'} confirmed by the broker)`, runTrailers(queued.run)),
    })
    .catch((err: Error) => log.warn({ err: err.message }, 'could not record that the run was published; recovery sends its queued tasks again'));
  log.info({ file, tasks: n, ...(reused.length ? { reused: reused.length } : {}) }, 'run queued');
  return { file, run: runId, outcome: 'queued', tasks: n, ...(reused.length ? { reused: reused.length } : {}) };
}

/** The project file as pushed, sized before it is read, and parsed; a ProjectError says what is wrong. */
async function readProject(ctx: RecorderContext, options: RecordOptions): Promise<Project> {
  const { store, settings } = ctx;
  const { file, todoCommit, configCommit, budget } = options;
  const missing = () => new ProjectError(file, [{ path: '$', message: `${settings.repos.todo} has no ${file} at ${todoCommit.slice(0, 7)}` }]);
  const bytes = await store.fileSize(settings.repos.todo, todoCommit, file);
  if (bytes === undefined) throw missing();
  budget.take(file, bytes);
  if (bytes > PROJECT_LIMITS.fileBytes) {
    throw new ProjectError(file, [{ path: '$', message: `file is ${bytes} bytes; a project file may be at most ${PROJECT_LIMITS.fileBytes} bytes` }]);
  }
  if (!configCommit) throw new ProjectError(file, [{ path: '$', message: `the ${settings.repos.config} repository has no ${settings.branch} branch to build workers from` }]);
  let text: string | undefined;
  try {
    text = await store.readFile(settings.repos.todo, todoCommit, file, { maxBytes: PROJECT_LIMITS.fileBytes });
  } catch (err) {
    if (err instanceof SizeLimitError) throw new ProjectError(file, [{ path: '$', message: `file is ${err.size} bytes; a project file may be at most ${PROJECT_LIMITS.fileBytes} bytes` }]);
    throw err;
  }
  if (text === undefined) throw missing();
  return parseProject(file, text);
}
