/**
 * The dispatcher: a push to the todo repository becomes runs. For each
 * project file the push added or changed, one commit in tracking records
 * the run and its tasks as queued (or the run as rejected, saying why), then
 * one TODO message per task is published.
 */
import { ProjectError, retryOnConflict } from '../core/errors.js';
import { Serial } from '../core/serial.js';
import { ZERO_SHA, type PushEvent } from '../core/events.js';
import { nextRerunId, runIdFor } from '../core/ids.js';
import { layout } from '../core/layout.js';
import type { Logger } from '../core/logger.js';
import type { TodoMessage } from '../core/messages.js';
import type { GitStore, Queue, RunObserver } from '../core/ports.js';
import { parseProject, PROJECT_LIMITS } from '../core/project.js';
import { readRunRecord, repoTree, unfinishedRuns } from '../core/run-reader.js';
import { isRunFinal, type RunRecord } from '../core/run.js';
import { effectiveLimits, type Settings } from '../core/settings.js';
import type { TaskRecord } from '../core/task.js';
import { queuedRun, rejectedRun } from '../core/tracking.js';

/** Project-file bytes one push may carry; files past it are refused (and can be pushed again on their own). */
export const PUSH_BYTES = 16 * 1024 * 1024;

export type DispatchOutcome =
  | { file: string; run: string; outcome: 'queued'; tasks: number }
  | { file: string; run: string; outcome: 'rejected'; error: string }
  | { file: string; run: string; outcome: 'duplicate' };

export type RerunOutcome = DispatchOutcome | { outcome: 'unknown' } | { outcome: 'unfinished'; state: string };

export interface DispatcherOptions {
  store: GitStore;
  queue: Queue;
  settings: Settings;
  /** Clone URL of the config repository, as workers will fetch it. */
  configUrl: string;
  log: Logger;
  observer?: RunObserver;
  /** Cancels a run (deleting its project file does). */
  cancel?: (runId: string, reason: string) => Promise<unknown>;
}

export class Dispatcher {
  /** Pushes one at a time, so that the duplicate check and the commit are one step. */
  private readonly serial = new Serial();
  /** The last todo commit dispatched: webhooks and the poller may report overlapping ranges. */
  private dispatched: string | undefined;
  /** Bytes of project files taken from the push being dispatched. */
  private pushBytes = 0;

  constructor(private readonly options: DispatcherOptions) {}

  handlePush(event: PushEvent): Promise<DispatchOutcome[]> {
    return this.serial.run(() => this.dispatch(event));
  }

  private async dispatch(event: PushEvent): Promise<DispatchOutcome[]> {
    const { store, settings, log } = this.options;
    if (event.ref !== `refs/heads/${settings.branch}`) {
      log.info({ repo: event.repo, ref: event.ref }, `push ignored: only ${settings.branch} starts runs`);
      return [];
    }
    if (event.repo === settings.repos.config) {
      // Runs dispatched from now on name this config commit; workers build its images on first use.
      await store.ensureCommit(event.repo, event.after);
      log.info({ after: event.after }, 'config repository moved; worker images build on next use');
      return [];
    }
    if (event.repo !== settings.repos.todo) return [];
    await store.ensureCommit(event.repo, event.after);
    let before = event.before;
    if (this.dispatched && this.dispatched !== event.after) {
      if (await store.isAncestor(event.repo, event.after, this.dispatched)) {
        log.info({ after: event.after, dispatched: this.dispatched, source: event.source }, 'push already covered by a later dispatch; ignored');
        return [];
      }
      // A range that overlaps one already dispatched starts where that one ended.
      if (await store.isAncestor(event.repo, this.dispatched, event.after)) {
        if (before === ZERO_SHA || (await store.isAncestor(event.repo, before, this.dispatched))) before = this.dispatched;
      }
    }
    const all = (await store.changedFiles(event.repo, before, event.after)).filter((f) => layout.isProjectFile(f.path));
    const deleted = all.filter((f) => f.status === 'deleted').map((f) => f.path);
    if (deleted.length) await this.cancelRunsOf(deleted, event.after);
    const changed = all.filter((f) => f.status !== 'deleted');
    if (!changed.length) {
      this.dispatched = event.after;
      return [];
    }
    const configCommit = await store.head(settings.repos.config);
    const outcomes: DispatchOutcome[] = [];
    this.pushBytes = 0;
    for (const { path: file } of changed) {
      outcomes.push(await this.dispatchFile(file, event.after, configCommit));
    }
    if (!this.dispatched || (await store.isAncestor(event.repo, this.dispatched, event.after))) this.dispatched = event.after;
    return outcomes;
  }

  /** Deleting a project file cancels its unfinished runs. */
  private async cancelRunsOf(files: string[], todoCommit: string): Promise<void> {
    const { store, settings, log, cancel } = this.options;
    if (!cancel) return;
    const head = await store.head(settings.repos.tracking);
    if (!head) return;
    for (const run of await unfinishedRuns(repoTree(store, settings.repos.tracking), head)) {
      if (!files.includes(run.file)) continue;
      log.info({ run: run.id, file: run.file }, 'project file deleted; cancelling its run');
      await cancel(run.id, `${run.file} deleted in ${todoCommit.slice(0, 7)}`);
    }
  }

  /**
   * Runs a finished run again as a new run: the same project file at the
   * same todo commit, built from the config repository as it is now (the
   * usual reason to re-run is a fixed worker image or a flaky task). The new
   * run is `<first run>.r<n>` and records which run it repeats.
   */
  rerun(runId: string): Promise<RerunOutcome> {
    return this.serial.run(() =>
      retryOnConflict(async (): Promise<RerunOutcome> => {
        const { store, settings } = this.options;
        const tracking = settings.repos.tracking;
        const head = await store.head(tracking);
        const original = head && (await readRunRecord(repoTree(store, tracking), head, runId));
        if (!head || !original) return { outcome: 'unknown' };
        if (!isRunFinal(original)) return { outcome: 'unfinished', state: original.state };
        const newId = nextRerunId(runId, await store.listDir(tracking, head, 'projects'));
        this.pushBytes = 0;
        await store.ensureCommit(settings.repos.todo, original.todoCommit);
        const configCommit = await store.head(settings.repos.config);
        this.options.log.info({ run: newId, rerunOf: runId }, 're-running');
        return this.dispatchFileOnce(original.file, original.todoCommit, configCommit, { runId: newId, rerunOf: runId });
      }),
    );
  }

  private dispatchFile(file: string, todoCommit: string, configCommit: string | undefined): Promise<DispatchOutcome> {
    // Another gitjobs may write to tracking between our check and our commit: then check again.
    return retryOnConflict(() => this.dispatchFileOnce(file, todoCommit, configCommit));
  }

  private async dispatchFileOnce(file: string, todoCommit: string, configCommit: string | undefined, rerun?: { runId: string; rerunOf: string }): Promise<DispatchOutcome> {
    const { store, settings } = this.options;
    const runId = rerun?.runId ?? runIdFor(file, todoCommit);
    const rerunOf = rerun ? { rerunOf: rerun.rerunOf } : {};
    const log = this.options.log.child({ run: runId });
    const tracking = settings.repos.tracking;
    const head = await store.head(tracking);
    if (head && (await store.readFile(tracking, head, layout.runFile(runId))) !== undefined) {
      log.info({ file }, 'run already recorded; duplicate push ignored');
      return { file, run: runId, outcome: 'duplicate' };
    }
    const now = new Date().toISOString();
    const text = await store.readFile(settings.repos.todo, todoCommit, file);
    let project;
    try {
      if (text === undefined) throw new ProjectError(file, [{ path: '$', message: `${settings.repos.todo} has no ${file} at ${todoCommit.slice(0, 7)}` }]);
      const bytes = Buffer.byteLength(text, 'utf8');
      this.pushBytes += Math.min(bytes, PROJECT_LIMITS.fileBytes + 1);
      if (bytes <= PROJECT_LIMITS.fileBytes && this.pushBytes > PUSH_BYTES) {
        throw new ProjectError(file, [{ path: '$', message: `the push carries more than ${PUSH_BYTES} bytes of project files; this one is past the limit, push it again on its own` }]);
      }
      if (!configCommit) throw new ProjectError(file, [{ path: '$', message: `the ${settings.repos.config} repository has no ${settings.branch} branch to build workers from` }]);
      project = parseProject(file, text);
    } catch (err) {
      if (!(err instanceof ProjectError)) throw err;
      const rejected = rejectedRun({ runId, file, problems: [...err.problems], todoCommit, now, ...rerunOf });
      await store.commit(tracking, { ...rejected, expectedHead: head });
      log.warn({ file, error: rejected.run.error }, 'project rejected');
      return { file, run: runId, outcome: 'rejected', error: rejected.run.error! };
    }
    const queued = queuedRun({ runId, file, project, todoCommit, configCommit: configCommit!, now, ...rerunOf });
    await store.commit(tracking, { changes: queued.changes, message: queued.message, expectedHead: head });
    this.options.observer?.runQueued?.(queued.run);
    for (const task of queued.tasks) await this.options.queue.publish('todo', todoFor(queued.run, task, settings, this.options.configUrl));
    log.info({ file, tasks: queued.tasks.length }, 'run queued');
    return { file, run: runId, outcome: 'queued', tasks: queued.tasks.length };
  }
}

/** The TODO message for a task's next attempt. */
export function todoFor(run: RunRecord, task: TaskRecord, settings: Settings, configUrl: string): TodoMessage {
  return {
    v: 1,
    run: run.id,
    task: task.id,
    attempt: task.attempts + 1,
    worker: run.worker ?? 'default',
    argv: task.argv,
    timeoutMs: task.timeoutMs,
    limits: effectiveLimits(settings.limits, run.limits),
    config: { url: configUrl, commit: run.configCommit! },
    todoCommit: run.todoCommit,
  };
}
