/**
 * The collector: takes what workers report on DONE, commits each transition
 * to tracking (one commit per transition), and once every task of a run is
 * final, reduces the outputs and commits the result to the done repository.
 * A DONE message is acked only after its commits are written.
 */
import { MessageError } from '../core/errors.js';
import { layout } from '../core/layout.js';
import type { Logger } from '../core/logger.js';
import { decode, taskEvent, type TaskEvent } from '../core/messages.js';
import type { GitStore, Queue, RunObserver } from '../core/ports.js';
import { allFinal, progress, type RunRecord } from '../core/run.js';
import type { Settings } from '../core/settings.js';
import type { TaskRecord } from '../core/task.js';
import { applyEvent, completeRun, requeue, runFinishedCommit, runRecordChange, runStarted, type RunResult } from '../core/tracking.js';
import { todoFor } from '../dispatcher/dispatcher.js';
import type { Consumer } from '../core/ports.js';

interface RunState {
  run: RunRecord;
  tasks: Map<string, TaskRecord>;
}

export interface CollectorOptions {
  store: GitStore;
  queue: Queue;
  settings: Settings;
  configUrl: string;
  log: Logger;
  /** How many DONE messages may be in hand at once. */
  prefetch?: number;
  onRunFinished?: (result: RunResult) => void;
  observer?: RunObserver;
}

export class Collector {
  private readonly runs = new Map<string, RunState>();
  private chain: Promise<unknown> = Promise.resolve();
  private consumer: Consumer | undefined;

  constructor(private readonly options: CollectorOptions) {}

  async start(): Promise<void> {
    this.consumer = await this.options.queue.consume('done', { prefetch: this.options.prefetch ?? 64 }, (content) => this.handle(content));
  }

  async stop(): Promise<void> {
    await this.consumer?.cancel();
    this.consumer = undefined;
    await this.chain;
  }

  /** Events are applied one at a time: each is a read-modify-commit of tracking. */
  handle(content: Buffer): Promise<void> {
    const next = this.chain.then(() => this.apply(content));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async apply(content: Buffer): Promise<void> {
    let event: TaskEvent;
    try {
      event = decode(taskEvent, 'DONE', content);
    } catch (err) {
      if (err instanceof MessageError) {
        this.options.log.error({ err: err.message }, 'dropped a DONE message that is not a task event');
        return;
      }
      throw err;
    }
    const log = this.options.log.child({ run: event.run, task: event.task, attempt: event.attempt });
    const state = await this.load(event.run);
    if (!state) {
      log.warn({}, 'event for a run that tracking does not know; dropped');
      return;
    }
    const task = state.tasks.get(event.task);
    if (!task) {
      log.warn({}, 'event for a task that the run does not have; dropped');
      return;
    }
    const { store, settings } = this.options;
    for (const step of applyEvent(state.run, task, event)) {
      if (step.kind === 'ignored') {
        log.info({ reason: step.reason }, `${event.kind} event ignored`);
        continue;
      }
      const changes = [...step.changes];
      const started = runStarted(state.run);
      if (started) {
        state.run = started;
        changes.push(runRecordChange(started));
      }
      await store.commit(settings.repos.tracking, { changes, message: step.message });
      state.tasks.set(task.id, step.task);
      if (step.retry) {
        const again = requeue(state.run, step.task, new Date().toISOString());
        await store.commit(settings.repos.tracking, again);
        state.tasks.set(task.id, again.task);
        await this.options.queue.publish('todo', todoFor(state.run, again.task, settings, this.options.configUrl));
        log.info({ next: again.task.attempts + 1 }, 'task failed; retrying');
      }
    }
    const tasks = state.run.tasks.map((id) => state.tasks.get(id)!);
    if (state.run.state !== 'succeeded' && state.run.state !== 'failed' && allFinal(tasks)) await this.complete(state, tasks, log);
    else if (event.kind === 'finished') this.options.observer?.runProgress?.(state.run, progress(tasks));
  }

  private async complete(state: RunState, tasks: TaskRecord[], log: Logger): Promise<void> {
    const { store, settings } = this.options;
    // The result names commits that others can fetch: publish them first.
    await store.flush(settings.repos.tracking);
    const trackingHead = (await store.head(settings.repos.tracking))!;
    const done = completeRun(state.run, tasks, trackingHead, new Date().toISOString());
    await store.commit(settings.repos.done, { changes: done.resultChanges, message: done.resultMessage });
    await store.flush(settings.repos.done);
    // Read back after the push: a push that had to replay on top of someone else's commit gives ours a new id.
    const doneCommit = (await store.head(settings.repos.done))!;
    await store.commit(settings.repos.tracking, runFinishedCommit(done.run, doneCommit));
    this.options.observer?.runFinished?.(done.run, progress(tasks));
    state.run = { ...done.run, doneCommit };
    log.info({ state: done.result.state, doneCommit }, 'run finished');
    this.options.onRunFinished?.(done.result);
    // Finished runs need no cache; tracking has them.
    this.runs.delete(state.run.id);
  }

  /** A run's records as tracking has them at its head. */
  private async load(runId: string): Promise<RunState | undefined> {
    const cached = this.runs.get(runId);
    if (cached) return cached;
    const { store, settings } = this.options;
    const repo = settings.repos.tracking;
    const head = await store.head(repo);
    if (!head) return undefined;
    const runText = await store.readFile(repo, head, layout.runFile(runId));
    if (runText === undefined) return undefined;
    const run = JSON.parse(runText) as RunRecord;
    const tasks = new Map<string, TaskRecord>();
    for (const id of run.tasks) {
      const text = await store.readFile(repo, head, layout.taskFile(runId, id));
      if (text === undefined) continue;
      const task = JSON.parse(text) as TaskRecord;
      if (task.stdoutFile) task.stdout = (await store.readFile(repo, head, task.stdoutFile)) ?? '';
      tasks.set(id, task);
    }
    const state = { run, tasks };
    if (run.state !== 'succeeded' && run.state !== 'failed' && run.state !== 'rejected') this.runs.set(runId, state);
    return state;
  }
}
