/**
 * DONE -> tracking: a worker's report becomes its transition commits, then
 * whatever follows from the run's new state (a retry, a dead letter, the
 * result). A copy of an attempt that tracking has already settled is told
 * to stop.
 */
import type { FinishedEvent, TaskEvent, TodoMessage } from '../core/channels.js';
import { decideWaiting, dependentsOf } from '../core/dag.js';
import { cancelTask, releaseTask, skipTask } from '../core/tracking/task-steps.js';
import type { Clock } from '../core/ports.js';
import { candidatesFor, type ResultCache } from '../core/result-cache.js';
import { reuseTask, type ReuseSource } from '../core/tracking/reuse.js';
import type { ReusedFrom } from '../core/task.js';
import type { Logger } from '../core/logger.js';
import type { Queue } from '../core/ports.js';
import type { Settings } from '../core/settings.js';
import { isFinal, type TaskRecord } from '../core/task.js';
import { applyEvent, succeeded } from '../core/tracking/apply-event.js';
import { runChange } from '../core/tracking/records.js';
import { runStarted } from '../core/tracking/complete-run.js';
import { runPaths } from '../core/layout.js';
import type { Completion } from './completion.js';
import type { Retries } from './retries.js';
import { allTasksFinal, progressOf, type LiveRun, type RunBook } from './run-book.js';
import type { Step } from './step.js';
import type { RunObserver } from '../core/ports.js';
import { fromWire, type FileData, type TaskFiles } from '../core/files.js';

export interface IntakeOptions {
  queue: Queue;
  settings: Settings;
  retries: Retries;
  completion: Completion;
  observer?: RunObserver;
  clock: Clock;
  /** The result cache's index, kept in step with the results committed here. */
  resultCache?: ResultCache;
  /** Commits what a successful attempt left under /out to done (task-files.ts). */
  commitFiles?: (run: LiveRun['run'], task: string, attempt: number, files: FileData[]) => Promise<TaskFiles>;
  /** Reads an earlier result a cache hit names (its record, log and stdout), or undefined when tracking has no such result. */
  readResult?: (from: ReusedFrom) => Promise<ReuseSource | undefined>;
}

export class Intake {
  constructor(private readonly options: IntakeOptions) {}

  async apply(step: Step, book: RunBook, event: TaskEvent, log: Logger): Promise<void> {
    const live = await book.load(event.run);
    if (!live) {
      log.warn({}, 'event for a run that tracking does not know; dropped');
      return;
    }
    const task = live.tasks.get(event.task);
    if (!task) {
      log.warn({}, 'event for a task that the run does not have; dropped');
      return;
    }
    if (event.kind === 'finished' && event.cached) {
      await this.fromCache(step, book, live, task, event, event.cached, log);
      return;
    }
    // A success's files go to done first: its transition names the commit that holds them.
    const files = event.kind === 'finished' && event.files?.length && this.options.commitFiles && endsAttempt(task, event) ? await this.options.commitFiles(live.run, task.id, event.attempt, fromWire(event.files)) : undefined;
    for (const applied of applyEvent(live.run, task, event, { outputTail: this.options.settings.outputTail, ...(files ? { files } : {}) })) {
      if (applied.kind === 'ignored') {
        log.info({ reason: applied.reason }, `${event.kind} event ignored`);
        if (event.kind === 'started' && event.worker && (isSettled(task, event.attempt) || isSecondCopy(task, event))) {
          // A duplicate copy of its message (recovery re-sent it, or its run was cancelled before this worker
          // started, or another worker runs this very attempt): its worker stops it now instead of running it to
          // an outcome that would be ignored.
          const abandon = { kind: 'abandon' as const, run: event.run, task: event.task, attempt: event.attempt, worker: event.worker };
          step.then(() => this.options.queue.broadcast('control', abandon));
        }
        continue;
      }
      const changes = [...applied.changes];
      const started = runStarted(live.run);
      if (started) {
        live.run = started;
        changes.push(runChange(runPaths(started), started));
      }
      const oid = await step.commit({ changes, message: applied.message }, { run: live.run.id, task: applied.task });
      book.setTask(live, applied.task);
      const { resultCache } = this.options;
      if (resultCache && applied.task.cacheKey) {
        const [run, done] = [live.run, applied.task];
        step.then(() => resultCache.addTask(run, done, oid));
      }
      if (isFinal(applied.task) && applied.task.state === 'failed') this.options.retries.deadLetter(step, live.run, applied.task, log);
    }
    // The output of a cancelled attempt moves nothing on: its task was final already.
    await this.afterChange(step, book, live, event.kind === 'finished' && !event.cancelled, log, live.tasks.get(event.task));
  }

  /**
   * Waiting tasks whose needs have settled: released to TODO once all
   * succeeded, skipped (and what needs them, in turn) once one did not.
   * Only the dependents of `changed` are looked at, or every waiting task
   * when there is none (recovery).
   */
  private async settleWaiting(step: Step, book: RunBook, live: LiveRun, changed: TaskRecord | undefined, log: Logger): Promise<void> {
    live.dependents ??= dependentsOf(live.tasks.values());
    const dependents = live.dependents;
    const { parallel } = live.run;
    // With `parallel`, a free slot may release any waiting task: then they are all looked at, in run order. With
    // no slot free (most reports of a big run), only what needs the changed task can move (it may be skipped).
    const allWaiting = () => [...live.tasks.values()].filter((t) => t.state === 'waiting').map((t) => t.id);
    const slotFree = parallel !== undefined && live.active < parallel;
    let frontier = changed && !slotFree ? (dependents.get(changed.id) ?? []) : allWaiting();
    const now = new Date(this.options.clock.now()).toISOString();
    while (frontier.length) {
      const next: string[] = [];
      for (const id of frontier) {
        const task = live.tasks.get(id);
        const decision = task && decideWaiting(task, live.tasks);
        if (!decision) continue;
        if (decision.kind === 'release') {
          if (parallel && live.active >= parallel) continue;
          const released = releaseTask(live.run, decision.task, now);
          await step.commit(released, { run: live.run.id, task: released.task });
          book.setTask(live, released.task);
          const message = await this.firstMessage(live.run, released.task, log);
          step.then(() => this.options.retries.sendLater(message, 0));
        } else {
          const skipped = skipTask(live.run, decision.task, decision.because, now);
          await step.commit(skipped, { run: live.run.id, task: skipped.task });
          book.setTask(live, skipped.task);
          log.info({ task: id, because: decision.because.id }, 'task skipped: something it needs did not succeed');
          next.push(...(dependents.get(id) ?? []));
        }
      }
      frontier = next;
    }
  }

  /** `"fail_fast": true` and a task failed for good: every task not yet final is cancelled, and running ones are killed. */
  private async failFast(step: Step, book: RunBook, live: LiveRun, changed: TaskRecord | undefined, log: Logger): Promise<void> {
    const failed = changed && changed.state === 'failed' && isFinal(changed) ? changed : [...live.tasks.values()].find((t) => t.state === 'failed' && isFinal(t));
    if (!failed) return;
    const reason = `fail_fast: ${failed.id} failed`;
    const now = new Date(this.options.clock.now()).toISOString();
    let n = 0;
    for (const task of [...live.tasks.values()]) {
      if (isFinal(task)) continue;
      const c = cancelTask(live.run, task, reason, now);
      await step.commit(c, { run: live.run.id, task: c.task });
      book.setTask(live, c.task);
      n++;
    }
    const runId = live.run.id;
    step.then(() => this.options.queue.broadcast('control', { kind: 'cancel', run: runId }));
    log.info({ failed: failed.id, cancelled: n }, 'fail_fast: the rest of the run is cancelled');
  }

  /** The TODO message of a task's first attempt, with the cache's candidates when it asked for the cache. */
  private async firstMessage(run: LiveRun['run'], task: TaskRecord, log: Logger): Promise<TodoMessage> {
    const candidates = await candidatesFor(this.options.resultCache, run, log);
    return this.options.retries.messageFor(run, task, candidates(task));
  }

  /**
   * A worker found the task's key among its cache candidates and ran
   * nothing: the task is recorded succeeded with the earlier result. If that
   * result cannot be read any more, the attempt is sent again without
   * candidates, and runs.
   */
  private async fromCache(step: Step, book: RunBook, live: LiveRun, task: TaskRecord, event: FinishedEvent, from: ReusedFrom, log: Logger): Promise<void> {
    if (task.state !== 'queued' || event.attempt !== task.attempts + 1) {
      log.info({ reason: `task is ${task.state} at attempt ${task.attempts}` }, 'cache hit ignored');
      return;
    }
    const source = await this.options.readResult?.(from);
    if (!source || source.record.state !== 'succeeded') {
      log.warn({ from }, 'the cached result a worker named cannot be read from tracking; the task runs instead');
      const message = this.options.retries.messageFor(live.run, task);
      step.then(() => this.options.retries.sendLater(message, 0));
      return;
    }
    const hit = reuseTask(live.run, task, source, event.at, { key: event.cacheKey ?? '', attempt: event.attempt, host: event.host });
    await step.commit(hit, { run: live.run.id, task: hit.task });
    book.setTask(live, { ...hit.task, stdout: source.stdout });
    log.info({ from: `${from.run}/${from.task}` }, 'task succeeded from the result cache');
    await this.afterChange(step, book, live, true, log, live.tasks.get(task.id));
  }

  /**
   * What follows from a run's state, whoever wrote it: retries of failed
   * attempts, waiting tasks released or skipped, `fail_fast`, then the
   * result.
   */
  async afterChange(step: Step, book: RunBook, live: LiveRun, progressed: boolean, log: Logger, only?: TaskRecord): Promise<void> {
    const candidates = only ? [only] : live.tasks.values();
    for (const t of [...candidates]) {
      const current = live.tasks.get(t.id)!;
      if (current.state === 'failed' && !isFinal(current)) await this.options.retries.retry(step, book, live, current, log);
    }
    if (live.run.failFast && live.failed > 0 && live.final < live.tasks.size && !live.run.cancelled) await this.failFast(step, book, live, only, log);
    if (live.waiting > 0) await this.settleWaiting(step, book, live, only, log);
    if (!live.run.doneCommit && allTasksFinal(live)) await this.options.completion.complete(step, book, live, log);
    else if (progressed) {
      const run = live.run;
      const progress = progressOf(live);
      step.then(() => this.options.observer?.runProgress?.(run, progress));
    }
  }
}

/** A successful `finished` that tracking will record: the task is at that attempt (or about to start it), not settled. */
function endsAttempt(task: TaskRecord, event: FinishedEvent): boolean {
  return succeeded(event) && !event.cancelled && ((task.state === 'running' && task.attempts === event.attempt) || (task.state === 'queued' && event.attempt === task.attempts + 1));
}

/** A fresh copy of an attempt that another worker is running: not a redelivery, so not a takeover. */
function isSecondCopy(task: TaskRecord, event: Extract<TaskEvent, { kind: 'started' }>): boolean {
  return event.redelivered === false && task.state === 'running' && task.attempts === event.attempt && task.worker?.id !== undefined && task.worker.id !== event.worker;
}

/** Whether tracking has moved past an attempt: the task is final, or a later attempt (or a retry of it) is under way. */
export function isSettled(task: TaskRecord, attempt: number): boolean {
  return isFinal(task) || attempt < task.attempts || (attempt === task.attempts && task.state !== 'running');
}
