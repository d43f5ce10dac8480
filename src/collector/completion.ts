/**
 * A run whose tasks are all final gets its result: reduced, committed to the
 * done repository (once, whoever else tries), and the run's final transition
 * committed to tracking, pointing at it.
 */
import { ConflictError } from '../core/errors.js';
import { runPaths } from '../core/layout.js';
import type { Logger } from '../core/logger.js';
import type { Clock, GitStore, RunObserver } from '../core/ports.js';
import type { Settings } from '../core/settings.js';
import { completeRun, runFinishedCommit, type RunResult } from '../core/tracking/complete-run.js';
import { progressOf, type LiveRun, type RunBook } from './run-book.js';
import type { Step } from './step.js';
import { borrowedFiles } from './task-files.js';

export interface CompletionOptions {
  store: GitStore;
  settings: Settings;
  clock: Clock;
  observer?: RunObserver;
  onRunFinished?: (result: RunResult) => void;
}

export class Completion {
  constructor(private readonly options: CompletionOptions) {}

  async complete(step: Step, book: RunBook, live: LiveRun, log: Logger): Promise<void> {
    const { store, settings, clock } = this.options;
    const tracking = settings.repos.tracking;
    // The result names a tracking commit that others can fetch: it must be durable and published first,
    // and what follows from the run's transitions (dead letters) happens before its result.
    await store.flush(tracking);
    await step.settle();
    const basis = await store.basis(tracking);
    if (!book.basis || basis.epoch !== book.basis.epoch) throw new ConflictError(tracking, book.basis?.head, basis.head);
    const trackingHead = basis.head!;
    const done = completeRun(live.run, [...live.tasks.values()], trackingHead, new Date(clock.now()).toISOString(), {
      resultCap: settings.resultCap,
      ...(live.overCap ? { outputBytes: live.stdoutBytes } : {}),
    });
    const resultFile = runPaths(live.run).resultJson;
    const doneHead = await store.head(settings.repos.done);
    // After a crash between the two commits, or with another collector, the result may be there already: never write it twice.
    const already = doneHead !== undefined && (await store.fileSize(settings.repos.done, doneHead, resultFile)) !== undefined;
    if (!already) {
      const borrowed = await borrowedFiles(store, settings.repos.done, live.run, live.tasks.values());
      await store.commit(settings.repos.done, { changes: [...done.resultChanges, ...borrowed], message: done.resultMessage, absent: [resultFile] });
    }
    await store.flush(settings.repos.done);
    // Read back after the push: a push that had to replay on top of someone else's commit gives ours a new id.
    const doneCommit = (await store.head(settings.repos.done))!;
    await step.commit(runFinishedCommit(done.run, doneCommit, live.run.state));
    live.run = { ...done.run, doneCommit };
    book.retire(live.run.id);
    const finished = live.run;
    const progress = progressOf(live);
    step.then(() => {
      log.info({ state: done.result.state, doneCommit }, 'run finished');
      this.options.observer?.runFinished?.(finished, progress);
      this.options.onRunFinished?.(done.result);
    });
  }
}
