/**
 * The dispatcher: a push to the todo repository becomes runs. Every project
 * file the push added or changed is recorded as a run (record-run.ts); a
 * deleted one cancels its unfinished runs; a push to the config repository
 * is passed on, so that workers build its images.
 */
import { systemClock } from '../core/clock.js';
import { retryOnConflict } from '../core/errors.js';
import { ZERO_SHA, type PushEvent } from '../core/events.js';
import { ProjectError } from '../core/errors.js';
import { firstRunOf, nextRerunId } from '../core/ids.js';
import { isProjectFile, scheduleFileOf } from '../core/layout.js';
import { scheduleEnded, type ScheduleRecord } from '../core/tracking/schedule.js';
import type { StageOptions } from '../core/ports.js';
import { readRunRecord, readRunView, repoTree, unfinishedRuns } from '../core/run-reader.js';
import { isRunFinal } from '../core/run.js';
import { Serial } from '../core/serial.js';
import { classifyPush } from '../push/filter.js';
import type { ResultCache } from '../core/result-cache.js';
import { NO_CACHE_TRAILER } from '../core/cache-key.js';
import { PushBudget, recordRun, type DispatchOutcome, type RecorderContext } from './record-run.js';
import { reusable } from './reusable.js';

export { PUSH_BYTES, type DispatchOutcome } from './record-run.js';

export type RerunOutcome =
  | DispatchOutcome
  | { outcome: 'unknown' }
  | { outcome: 'unfinished'; state: string }
  | { outcome: 'nothing-failed' }
  /** A task asked for that the run does not have, or a config commit the config repository does not have. */
  | { outcome: 'refused'; error: string };

export interface RerunOptions {
  /** Only the tasks that did not succeed run; the others are reused. */
  failed?: boolean;
  /** The config commit the run had, instead of today's. */
  pinned?: boolean;
  /** This config commit (bisect). */
  config?: string;
  /** Only these tasks (bisect): the new run has no others. */
  tasks?: string[];
  /** No task takes a result from the cache. */
  noCache?: boolean;
}


export interface DispatcherOptions extends StageOptions {
  /** The result cache's index, shared with the collector that keeps it. */
  resultCache?: ResultCache;
  /** Cancels a run (deleting its project file does). */
  cancel?: (runId: string, reason: string) => Promise<unknown>;
  /** The config repository's branch moved to `commit` (workers build its images ahead of use). */
  onConfig?: (commit: string) => void;
  /** A schedule was recorded or ended: the scheduler looks at tracking again. */
  onSchedule?: () => void;
}

export class Dispatcher {
  /** Pushes one at a time, so that overlapping ranges are cut against what was dispatched. */
  private readonly serial = new Serial();
  /** The last todo commit dispatched: webhooks and the poller may report overlapping ranges. */
  private dispatched: string | undefined;
  private readonly ctx: RecorderContext;
  /** (repository, before, after) of the pushes dispatched lately: a replayed delivery, whatever its id, is one push. */
  private readonly recent = new Set<string>();

  constructor(private readonly options: DispatcherOptions) {
    const { store, queue, settings, configUrl, log, observer, resultCache, onSchedule } = options;
    this.ctx = { store, queue, settings, configUrl, log, clock: options.clock ?? systemClock, ...(observer ? { observer } : {}), ...(resultCache ? { resultCache } : {}), ...(onSchedule ? { onSchedule } : {}) };
  }

  handlePush(event: PushEvent): Promise<DispatchOutcome[]> {
    return this.serial.run(() => this.dispatch(event));
  }

  private async dispatch(event: PushEvent): Promise<DispatchOutcome[]> {
    const { store, settings, log } = this.options;
    const concern = classifyPush(event, settings);
    if ('ignored' in concern) {
      log.info({ repo: event.repo, ref: event.ref }, `push ignored: ${concern.ignored}`);
      return [];
    }
    const key = `${event.repo} ${event.before} ${event.after}`;
    if (this.recent.has(key)) {
      log.info({ repo: event.repo, before: event.before, after: event.after, source: event.source }, 'push already dispatched; ignored');
      return [];
    }
    await store.ensureCommit(event.repo, event.after);
    if (concern.target === 'config') {
      this.remember(key);
      // Runs dispatched from now on name this config commit.
      log.info({ after: event.after }, 'config repository moved; worker images build for it');
      this.options.onConfig?.(event.after);
      return [];
    }
    const before = await this.rangeStart(event);
    if (before === undefined) {
      log.info({ after: event.after, dispatched: this.dispatched, source: event.source }, 'push already covered by a later dispatch; ignored');
      this.remember(key);
      return [];
    }
    const files = (await store.changedFiles(event.repo, before, event.after)).filter((f) => isProjectFile(f.path));
    const deleted = files.filter((f) => f.status === 'deleted').map((f) => f.path);
    if (deleted.length) {
      await this.cancelRunsOf(deleted, event.after);
      await this.endSchedulesOf(deleted, event.after);
    }
    const configCommit = await store.head(settings.repos.config);
    const budget = new PushBudget();
    const outcomes: DispatchOutcome[] = [];
    const added = files.filter((f) => f.status !== 'deleted').map((f) => f.path);
    if (added.length > settings.pushFiles) {
      // One record for the whole push, and none of its files run.
      const folder = `${added[0]!.split('/')[0]}/`;
      const refused = new ProjectError(folder, [
        { path: '$', message: `the push adds or changes ${added.length} project files; at most ${settings.pushFiles} may come in one push (GITJOBS_PUSH_FILES), so none of them run. Push them in smaller batches.` },
      ]);
      log.warn({ after: event.after, files: added.length, limit: settings.pushFiles }, 'push refused: too many project files');
      outcomes.push(await retryOnConflict(() => recordRun(this.ctx, { file: folder, todoCommit: event.after, configCommit, budget, refused })));
    } else if (added.length) {
      const noCache = await this.saysNoCache(event.repo, event.after);
      for (const file of added) {
        // Another gitjobs may record the run between our check and our commit: then check again.
        outcomes.push(await retryOnConflict(() => recordRun(this.ctx, { file, todoCommit: event.after, configCommit, budget, ...(noCache ? { noCache } : {}) })));
      }
    }
    if (!this.dispatched || (await store.isAncestor(event.repo, this.dispatched, event.after))) this.dispatched = event.after;
    this.remember(key);
    return outcomes;
  }

  /** Whether the pushed commit's message asks to run without the cache (a trailer line of its own). */
  private async saysNoCache(repo: string, commit: string): Promise<boolean> {
    for await (const c of this.options.store.history(repo, commit)) return c.message.split('\n').some((l) => l.trim() === NO_CACHE_TRAILER);
    return false;
  }

  private remember(key: string): void {
    this.recent.add(key);
    if (this.recent.size > 10_000) this.recent.delete(this.recent.values().next().value!);
  }

  /**
   * Where the push's range starts, cut against what was already dispatched;
   * undefined when it is all covered. A push that says it starts from
   * nothing (`before` all zeros: a new branch, or a replayed delivery)
   * starts from the last todo commit dispatched in its history, so that no
   * file already run is run again.
   */
  private async rangeStart(event: PushEvent): Promise<string | undefined> {
    const { store } = this.options;
    const last = this.dispatched;
    const fromNothing = event.before === ZERO_SHA;
    if (last === event.after) return fromNothing ? last : event.before;
    if (last) {
      if (await store.isAncestor(event.repo, event.after, last)) return undefined;
      // Everything up to `last` in this history was dispatched: start there, whether the push's range overlaps it
      // or begins after it (deliveries come out of order: the push before this one may not have arrived yet).
      if (await store.isAncestor(event.repo, last, event.after)) return last;
    }
    if (!fromNothing) return event.before;
    return (await this.lastRecordedIn(event.repo, event.after)) ?? ZERO_SHA;
  }

  /** The newest commit in `after`'s history at which tracking records a dispatch (its runs' Todo-Commit trailers). */
  private async lastRecordedIn(repo: string, after: string): Promise<string | undefined> {
    const { store, settings } = this.options;
    const head = await store.head(settings.repos.tracking);
    if (!head) return undefined;
    const recorded = new Set<string>();
    for await (const c of store.history(settings.repos.tracking, head)) {
      const m = /^Todo-Commit: ([0-9a-f]{40})$/m.exec(c.message);
      if (m) recorded.add(m[1]!);
    }
    if (!recorded.size) return undefined;
    for await (const c of store.history(repo, after)) if (recorded.has(c.oid)) return c.oid;
    return undefined;
  }

  /** Deleting a scheduled project file ends its schedule. */
  private async endSchedulesOf(files: string[], todoCommit: string): Promise<void> {
    const { store, settings, log } = this.options;
    const tracking = settings.repos.tracking;
    for (const file of files) {
      const ended = await retryOnConflict(async () => {
        const head = await store.head(tracking);
        if (!head || (await store.fileSize(tracking, head, scheduleFileOf(file))) === undefined) return false;
        await store.commit(tracking, scheduleEnded(file, `deleted in ${todoCommit.slice(0, 7)}`, todoCommit));
        return true;
      });
      if (ended) {
        log.info({ file }, 'project file deleted; its schedule ended');
        this.options.onSchedule?.();
      }
    }
  }

  /**
   * The run of a scheduled project file at one tick (scheduler.ts): the
   * file as its schedule recorded it, with the config repository as it is
   * now. A tick already run is a duplicate, never a second run.
   */
  runScheduled(schedule: ScheduleRecord, tick: string): Promise<DispatchOutcome> {
    return this.serial.run(() =>
      retryOnConflict(async () => {
        const { store, settings } = this.options;
        await store.ensureCommit(settings.repos.todo, schedule.todoCommit);
        const configCommit = await store.head(settings.repos.config);
        return recordRun(this.ctx, { file: schedule.file, todoCommit: schedule.todoCommit, configCommit, budget: new PushBudget(), tick: { schedule, at: tick } });
      }),
    );
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
   * run is `<first run>.r<n>` and records which run it repeats. With
   * `failed`, only the tasks that did not succeed run; the others are
   * recorded as reused from the run (see tracking/reuse.ts). With `pinned`,
   * the run's own config commit is used instead of today's: the same
   * Dockerfiles, built again if their images are gone. `config` and `tasks`
   * run some tasks at a given config commit (what `gitjobs bisect` does).
   */
  rerun(runId: string, options: RerunOptions = {}): Promise<RerunOutcome> {
    return this.serial.run(() =>
      retryOnConflict(async (): Promise<RerunOutcome> => {
        const { store, settings } = this.options;
        const tracking = settings.repos.tracking;
        const head = await store.head(tracking);
        const original = head && (await readRunRecord(repoTree(store, tracking), head, runId));
        if (!head || !original) return { outcome: 'unknown' };
        if (!isRunFinal(original)) return { outcome: 'unfinished', state: original.state };
        if (options.failed && original.state === 'succeeded') return { outcome: 'nothing-failed' };
        const reuse = options.failed ? await reusable(store, tracking, head, runId) : undefined;
        // Re-runs are numbered from the first run: the next number no run has yet.
        let newId = nextRerunId(runId, []);
        for (let n = 2; await readRunRecord(repoTree(store, tracking), head, newId); n++) newId = `${firstRunOf(runId)}.r${n}`;
        await store.ensureCommit(settings.repos.todo, original.todoCommit);
        const wanted = options.config ?? (options.pinned ? original.configCommit : undefined);
        if (wanted) {
          const there = await store.ensureCommit(settings.repos.config, wanted).then(() => true, () => false);
          if (!there) return { outcome: 'refused', error: `the ${settings.repos.config} repository has no commit ${wanted}` };
        }
        const configCommit = wanted ?? (await store.head(settings.repos.config));
        let only: Set<string> | undefined;
        if (options.tasks) {
          const has = new Set((await readRunView(repoTree(store, tracking), head, runId))?.tasks.map((t) => t.id));
          const missing = options.tasks.filter((t) => !has.has(t));
          if (missing.length || !options.tasks.length) return { outcome: 'refused', error: missing.length ? `run ${runId} has no task ${missing.join(', ')}` : 'no task named' };
          only = new Set(options.tasks);
        }
        this.options.log.info({ run: newId, rerunOf: runId }, 're-running');
        return recordRun(this.ctx, {
          file: original.file,
          todoCommit: original.todoCommit,
          configCommit,
          budget: new PushBudget(),
          rerun: { runId: newId, rerunOf: runId },
          ...(reuse ? { reuse } : {}),
          ...(only ? { only } : {}),
          ...(options.noCache ? { noCache: true } : {}),
        });
      }),
    );
  }
}
