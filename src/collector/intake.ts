/**
 * DONE -> tracking: a worker's report becomes its transition commits, then
 * whatever follows from the run's new state (a retry, a dead letter, the
 * result). A copy of an attempt that tracking has already settled is told
 * to stop.
 */
import type { TaskEvent } from '../core/channels.js';
import type { Logger } from '../core/logger.js';
import type { Queue } from '../core/ports.js';
import type { Settings } from '../core/settings.js';
import { isFinal, type TaskRecord } from '../core/task.js';
import { applyEvent } from '../core/tracking/apply-event.js';
import { runChange } from '../core/tracking/records.js';
import { runStarted } from '../core/tracking/complete-run.js';
import { runPaths } from '../core/layout.js';
import type { Completion } from './completion.js';
import type { Retries } from './retries.js';
import { allTasksFinal, progressOf, type LiveRun, type RunBook } from './run-book.js';
import type { Step } from './step.js';
import type { RunObserver } from '../core/ports.js';

export interface IntakeOptions {
  queue: Queue;
  settings: Settings;
  retries: Retries;
  completion: Completion;
  observer?: RunObserver;
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
    for (const applied of applyEvent(live.run, task, event, { outputTail: this.options.settings.outputTail })) {
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
      await step.commit({ changes, message: applied.message }, { run: live.run.id, task: applied.task });
      book.setTask(live, applied.task);
      if (isFinal(applied.task) && applied.task.state === 'failed') this.options.retries.deadLetter(step, live.run, applied.task, log);
    }
    // The output of a cancelled attempt moves nothing on: its task was final already.
    await this.afterChange(step, book, live, event.kind === 'finished' && !event.cancelled, log, live.tasks.get(event.task));
  }

  /** What follows from a run's state, whoever wrote it: retries of failed attempts, then the result. */
  async afterChange(step: Step, book: RunBook, live: LiveRun, progressed: boolean, log: Logger, only?: TaskRecord): Promise<void> {
    const candidates = only ? [only] : live.tasks.values();
    for (const t of [...candidates]) {
      const current = live.tasks.get(t.id)!;
      if (current.state === 'failed' && !isFinal(current)) await this.options.retries.retry(step, book, live, current, log);
    }
    if (!live.run.doneCommit && allTasksFinal(live)) await this.options.completion.complete(step, book, live, log);
    else if (progressed) {
      const run = live.run;
      const progress = progressOf(live);
      step.then(() => this.options.observer?.runProgress?.(run, progress));
    }
  }
}

/** A fresh copy of an attempt that another worker is running: not a redelivery, so not a takeover. */
function isSecondCopy(task: TaskRecord, event: Extract<TaskEvent, { kind: 'started' }>): boolean {
  return event.redelivered === false && task.state === 'running' && task.attempts === event.attempt && task.worker?.id !== undefined && task.worker.id !== event.worker;
}

/** Whether tracking has moved past an attempt: the task is final, or a later attempt (or a retry of it) is under way. */
export function isSettled(task: TaskRecord, attempt: number): boolean {
  return isFinal(task) || attempt < task.attempts || (attempt === task.attempts && task.state !== 'running');
}
