/**
 * The collector: takes what workers report on DONE, commits each transition
 * to tracking (one commit per transition), and once every task of a run is
 * final, reduces the outputs and commits the result to the done repository.
 * A DONE message is acked only after its commits are written.
 *
 * It also owns what happens between attempts: a failed attempt with attempts
 * left is queued again after an exponential backoff; a task out of attempts
 * goes to the dead-letter queue. On start, `recover` reconciles tracking (the
 * system of record) with the queues.
 */
import { ConflictError, MessageError, retryOnConflict } from '../core/errors.js';
import { Serial } from '../core/serial.js';
import { layout } from '../core/layout.js';
import { readRunView, repoTree, unfinishedRuns } from '../core/run-reader.js';
import type { Logger } from '../core/logger.js';
import { decode, taskEvent, type TaskEvent } from '../core/messages.js';
import type { Consumer, FileChange, GitStore, Queue, RunObserver } from '../core/ports.js';
import { allFinal, isRunFinal, progress, type RunRecord } from '../core/run.js';
import { retryDelay, type Settings } from '../core/settings.js';
import { formatDuration } from '../core/duration.js';
import { isFinal, type TaskRecord } from '../core/task.js';
import { applyEvent, cancelTask, completeRun, requeue, runFinishedCommit, runRecordChange, runStarted, type RunResult } from '../core/tracking.js';
import { todoFor } from '../dispatcher/dispatcher.js';

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

export type CancelOutcome = { outcome: 'cancelled'; tasks: number } | { outcome: 'unknown' } | { outcome: 'finished'; state: string };

export interface RecoveryReport {
  republished: number;
  /** Running attempts held by a message, queued again only if no worker reports them. */
  watched: number;
  completed: number;
  requeued: number;
}

export class Collector {
  private readonly runs = new Map<string, RunState>();
  /** The tracking head the cached runs were read at; another writer moving it invalidates them. */
  private head: string | undefined;
  /** Read-modify-commit steps on tracking, one at a time. */
  private readonly serial = new Serial();
  private consumer: Consumer | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Leased attempts (acked at start, held by heartbeats): when each is lost if no heartbeat comes. */
  private readonly leases = new Map<string, { run: string; task: string; attempt: number; leaseMs: number; expires: number }>();
  private reaper: NodeJS.Timeout | undefined;
  /**
   * Attempts recorded running when this collector started, held by a message: queued again unless a worker
   * shows it still has them (a heartbeat, or the attempt's events) before `expires`.
   */
  private readonly unclaimed = new Map<string, { message: ReturnType<typeof todoFor>; expires: number }>();
  /** Attempts this collector saw finish lately: a heartbeat sent just before the end starts no lease. */
  private readonly finished = new Set<string>();
  private control: Consumer | undefined;

  constructor(private readonly options: CollectorOptions) {}

  async start(): Promise<void> {
    this.consumer = await this.options.queue.consume('done', { prefetch: this.options.prefetch ?? 64 }, (content) => this.handle(content));
    this.control = await this.options.queue.onBroadcast((content) => {
      let event: TaskEvent;
      try {
        event = decode(taskEvent, 'CONTROL', content);
      } catch {
        return; // cancels and abandons are for workers
      }
      if (event.kind === 'heartbeat') this.heartbeat(event);
    });
    const every = Math.max(200, Math.min(5000, this.options.settings.heartbeatMs));
    this.reaper = setInterval(() => void this.reapLeases(), every);
  }

  async stop(): Promise<void> {
    clearInterval(this.reaper);
    await this.control?.cancel();
    this.control = undefined;
    await this.consumer?.cancel();
    this.consumer = undefined;
    // Retries waiting for their backoff are in tracking as queued: `recover` sends them at the next start.
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.unclaimed.clear();
    await this.serial.idle();
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.serial.run(fn);
  }

  /**
   * A heartbeat, from DONE or the control exchange: its worker still has the attempt. A leased attempt's lease is
   * extended; one this collector did not know of starts, so that every collector holds every lease it hears of and
   * the lease outlives the collector that saw the attempt start.
   */
  private heartbeat(event: Extract<TaskEvent, { kind: 'heartbeat' }>): void {
    const key = `${event.run}/${event.task}/${event.attempt}`;
    this.unclaimed.delete(key);
    const lease = this.leases.get(key);
    if (lease) lease.expires = Date.now() + lease.leaseMs;
    else if (event.leaseMs && !this.finished.has(key)) this.leases.set(key, { run: event.run, task: event.task, attempt: event.attempt, leaseMs: event.leaseMs, expires: Date.now() + event.leaseMs });
  }

  /** Runs a step again from a fresh read of tracking whenever another collector wrote first. */
  private withRetries<T>(step: () => Promise<T>, log: Logger = this.options.log): Promise<T> {
    return retryOnConflict(step, (err) => {
      log.debug({ err: err.message }, 'tracking moved under us; reading it again');
      this.forget();
    });
  }

  handle(content: Buffer): Promise<void> {
    return this.exclusive(() => this.apply(content));
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
    const key = `${event.run}/${event.task}/${event.attempt}`;
    this.unclaimed.delete(key);
    if (event.kind === 'heartbeat') {
      this.heartbeat(event);
      return;
    }
    if (event.kind === 'started' && event.leaseMs) this.leases.set(key, { run: event.run, task: event.task, attempt: event.attempt, leaseMs: event.leaseMs, expires: Date.now() + event.leaseMs });
    if (event.kind === 'finished') {
      this.leases.delete(key);
      this.rememberFinished(key);
    }
    await this.applyWithRetries(event);
  }

  private rememberFinished(key: string): void {
    this.finished.add(key);
    if (this.finished.size > 4096) this.finished.delete(this.finished.values().next().value!);
  }

  /**
   * A leased attempt whose heartbeats stopped: its worker is gone. It fails
   * as `worker lost`, and its retries apply.
   */
  private async reapLeases(): Promise<void> {
    const now = Date.now();
    for (const [key, watch] of this.unclaimed) {
      if (watch.expires > now) continue;
      this.unclaimed.delete(key);
      const { run, task: taskId, attempt } = watch.message;
      await this.exclusive(async () => {
        const task = (await this.load(run))?.tasks.get(taskId);
        // Another collector may have seen it end meanwhile.
        if (!task || task.state !== 'running' || task.attempts !== attempt) return;
        // No worker has it (its message went with the queues): queue it again.
        this.options.log.warn({ run, task: taskId, attempt }, 'a running attempt that no worker reports holding; queued again');
        this.publishLater(watch.message, 0);
      }).catch((err: Error) => this.options.log.error({ run, task: taskId, err: err.message }, 'could not check an unclaimed attempt; the next start does'));
    }
    for (const [key, lease] of this.leases) {
      if (lease.expires > now) continue;
      this.leases.delete(key);
      await this.exclusive(async () => {
        const state = await this.load(lease.run);
        const task = state?.tasks.get(lease.task);
        if (!task || task.state !== 'running' || task.attempts !== lease.attempt) return;
        const error = `worker lost: no heartbeat from ${task.worker?.id ?? task.worker?.host ?? 'its worker'} for ${formatDuration(lease.leaseMs)}`;
        this.options.log.warn({ run: lease.run, task: lease.task, attempt: lease.attempt }, error);
        const at = new Date().toISOString();
        const started = task.startedAt ? Date.parse(task.startedAt) : now;
        await this.applyWithRetries({ v: 1, kind: 'finished', run: lease.run, task: lease.task, attempt: lease.attempt, host: task.worker?.host ?? 'unknown', ...(task.worker?.id ? { worker: task.worker.id } : {}), image: task.worker?.image ?? 'unknown', at, exitCode: null, durationMs: Math.max(0, now - started), timedOut: false, stdout: '', output: `${error}\n`, truncated: false, error });
      }).catch((err: Error) => this.options.log.error({ run: lease.run, task: lease.task, err: err.message }, 'could not record a lost worker'));
    }
  }

  private applyWithRetries(event: TaskEvent): Promise<void> {
    const log = this.options.log.child({ run: event.run, task: event.task, attempt: event.attempt });
    // Another collector may have written to tracking: the event is applied to what is there now.
    return this.withRetries(() => this.applyEvent(event, log), log);
  }

  private forget(): void {
    this.runs.clear();
    this.head = undefined;
  }

  /** Commits to tracking on top of what the cached runs were read from. */
  private async commitTracking(changes: { changes: FileChange[]; message: string }, change?: { run: string; task: TaskRecord }): Promise<string> {
    const started = performance.now();
    const oid = await this.options.store.commit(this.options.settings.repos.tracking, { ...changes, expectedHead: this.head });
    this.head = oid;
    this.options.observer?.committed?.(this.options.settings.repos.tracking, performance.now() - started);
    if (change) this.options.observer?.taskChanged?.({ ...change, commit: oid, subject: changes.message.split('\n')[0]! });
    return oid;
  }

  private async applyEvent(event: TaskEvent, log: Logger): Promise<void> {
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
    for (const step of applyEvent(state.run, task, event)) {
      if (step.kind === 'ignored') {
        log.info({ reason: step.reason }, `${event.kind} event ignored`);
        if (event.kind === 'started' && event.worker && isSettled(task, event.attempt)) {
          // A duplicate copy of its message (recovery re-sent it, or its run was cancelled before this worker
          // started): its worker stops it now instead of running it to an outcome that would be ignored.
          await this.options.queue.broadcast({ kind: 'abandon', run: event.run, task: event.task, attempt: event.attempt, worker: event.worker });
        }
        continue;
      }
      const changes = [...step.changes];
      const started = runStarted(state.run);
      if (started) {
        state.run = started;
        changes.push(runRecordChange(started));
      }
      await this.commitTracking({ changes, message: step.message }, { run: state.run.id, task: step.task });
      state.tasks.set(task.id, step.task);
      if (isFinal(step.task) && step.task.state === 'failed') await this.deadLetter(state.run, step.task, log);
    }
    await this.afterChange(state, event.kind === 'finished', log);
  }

  /** What follows from a run's state, whoever wrote it: retries of failed attempts, then the result. */
  private async afterChange(state: RunState, progressed: boolean, log: Logger): Promise<void> {
    for (const id of state.run.tasks) {
      const t = state.tasks.get(id)!;
      if (t.state === 'failed' && !isFinal(t)) await this.retry(state, t, log);
    }
    const tasks = state.run.tasks.map((id) => state.tasks.get(id)!);
    if (!state.run.doneCommit && allFinal(tasks)) await this.complete(state, tasks, log);
    else if (progressed) this.options.observer?.runProgress?.(state.run, progress(tasks));
  }

  /** failed -> queued, then the next attempt goes to TODO once its backoff has passed. */
  private async retry(state: RunState, task: TaskRecord, log: Logger): Promise<void> {
    const { settings } = this.options;
    const delay = retryDelay(settings, task.attempts);
    const again = requeue(state.run, task, new Date().toISOString(), delay);
    await this.commitTracking(again, { run: state.run.id, task: again.task });
    state.tasks.set(task.id, again.task);
    log.info({ next: again.task.attempts + 1, delayMs: delay }, 'task failed; retrying after backoff');
    this.publishLater(todoFor(state.run, again.task, settings, this.options.configUrl), delay);
  }

  private publishLater(message: ReturnType<typeof todoFor>, delayMs: number): void {
    const send = () =>
      this.options.queue.publish('todo', message).catch((err: Error) => this.options.log.error({ run: message.run, task: message.task, err: err.message }, 'could not queue a retry; the next start recovers it'));
    if (delayMs <= 0) {
      void send();
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void send();
    }, delayMs);
    this.timers.add(timer);
  }

  /** A task out of attempts: its last message goes where an operator can look at it. */
  private async deadLetter(run: RunRecord, task: TaskRecord, log: Logger): Promise<void> {
    const message = { ...todoFor(run, { ...task, attempts: task.attempts - 1 }, this.options.settings, this.options.configUrl), reason: task.error ?? `exit ${task.exitCode}`, failedAt: task.finishedAt };
    await this.options.queue.publish('dead', message);
    log.warn({ reason: message.reason, attempts: task.attempts }, 'task failed for good; message sent to the dead-letter queue');
  }

  private async complete(state: RunState, tasks: TaskRecord[], log: Logger): Promise<void> {
    const { store, settings } = this.options;
    // The result names commits that others can fetch: publish them first.
    await store.flush(settings.repos.tracking);
    const trackingHead = (await store.head(settings.repos.tracking))!;
    if (trackingHead !== this.head) throw new ConflictError(settings.repos.tracking, this.head, trackingHead);
    const done = completeRun(state.run, tasks, trackingHead, new Date().toISOString());
    const doneHead = await store.head(settings.repos.done);
    // After a crash between the two commits, or with another collector, the result may be there already: never write it twice.
    const already = doneHead && (await store.readFile(settings.repos.done, doneHead, layout.resultJson(state.run.id))) !== undefined;
    if (!already) await store.commit(settings.repos.done, { changes: done.resultChanges, message: done.resultMessage, expectedHead: doneHead });
    await store.flush(settings.repos.done);
    // Read back after the push: a push that had to replay on top of someone else's commit gives ours a new id.
    const doneCommit = (await store.head(settings.repos.done))!;
    await this.commitTracking(runFinishedCommit(done.run, doneCommit, state.run.state));
    state.run = { ...done.run, doneCommit };
    log.info({ state: done.result.state, doneCommit }, 'run finished');
    this.options.observer?.runFinished?.(done.run, progress(tasks));
    this.options.onRunFinished?.(done.result);
    // Finished runs need no cache; tracking has them.
    this.runs.delete(state.run.id);
  }

  /**
   * Cancels a run: every task not yet final ends `cancelled` (one commit
   * each), workers are told to kill its running containers, and the result
   * records the cancellation.
   */
  cancel(runId: string, reason: string): Promise<CancelOutcome> {
    return this.exclusive(async () => {
      const log = this.options.log.child({ run: runId });
      return this.withRetries(async (): Promise<CancelOutcome> => {
        const state = await this.load(runId);
        if (!state) return { outcome: 'unknown' };
        if (isRunFinal(state.run)) return { outcome: 'finished', state: state.run.state };
        state.run = { ...state.run, cancelled: reason };
        let tasks = 0;
        for (const id of state.run.tasks) {
          const task = state.tasks.get(id)!;
          if (isFinal(task)) continue;
          const c = cancelTask(state.run, task, reason, new Date().toISOString());
          await this.commitTracking(c, { run: state.run.id, task: c.task });
          state.tasks.set(id, c.task);
          tasks++;
        }
        await this.options.queue.broadcast({ kind: 'cancel', run: runId });
        log.info({ tasks, reason }, 'run cancelled');
        await this.afterChange(state, false, log);
        return { outcome: 'cancelled', tasks };
      }, log);
    });
  }

  /**
   * Reconciles tracking with the queues, as after a crash or with the queues
   * deleted: every task recorded queued is put back on TODO (the queues
   * deliver at least once, so a copy that was still there only runs again and
   * its outcome is ignored); a running attempt is put back only if no worker
   * reports holding it within three heartbeats (a leased one, when its lease
   * runs out, as lost); a failed attempt
   * that never got its retry is queued again; a run whose tasks are all final
   * but which has no result gets it.
   */
  recover(): Promise<RecoveryReport> {
    return this.exclusive(async () => {
      const { store, settings, log } = this.options;
      const report: RecoveryReport = { republished: 0, watched: 0, completed: 0, requeued: 0 };
      const head = await store.head(settings.repos.tracking);
      if (!head) return report;
      for (const run of await unfinishedRuns(repoTree(store, settings.repos.tracking), head)) {
        const runLog = log.child({ run: run.id });
        await this.withRetries(() => this.recoverRun(run.id, report, runLog), runLog);
      }
      if (report.republished || report.watched || report.completed || report.requeued) log.info({ ...report }, 'recovered unfinished runs from tracking');
      return report;
    });
  }

  private async recoverRun(runId: string, report: RecoveryReport, log: Logger): Promise<void> {
    const state = await this.load(runId);
    if (!state || state.run.doneCommit) return;
    const { settings } = this.options;
    for (const id of state.run.tasks) {
      const task = state.tasks.get(id)!;
      if (isFinal(task)) continue;
      if (task.state === 'failed') {
        report.requeued++; // afterChange below queues it again
        continue;
      }
      if (task.state === 'running' && task.leaseMs) {
        // Held by heartbeats, not by a message: if its worker is alive they resume; if not, the lease runs out.
        const key = `${runId}/${id}/${task.attempts}`;
        this.leases.set(key, { run: runId, task: id, attempt: task.attempts, leaseMs: task.leaseMs, expires: Date.now() + task.leaseMs });
        continue;
      }
      if (task.state === 'running') {
        // Held by its message: a live worker has it (and heartbeats say so), or the broker gives it to another
        // when that worker's connection drops. Queued again only if no worker reports it within three heartbeats
        // (the queues were deleted, or the broker lost them).
        const message = todoFor(state.run, { ...task, attempts: task.attempts - 1 }, settings, this.options.configUrl);
        this.unclaimed.set(`${runId}/${id}/${task.attempts}`, { message, expires: Date.now() + 3 * settings.heartbeatMs });
        report.watched++;
        continue;
      }
      // queued: the next attempt. Its message may never have been sent (a crash between the commit and the publish, a
      // retry waiting out its backoff): sent again, a copy that was still queued only runs again and its outcome is ignored.
      const message = todoFor(state.run, task, settings, this.options.configUrl);
      this.publishLater(message, task.notBefore ? Date.parse(task.notBefore) - Date.now() : 0);
      report.republished++;
    }
    await this.afterChange(state, false, log);
    if (state.run.doneCommit) report.completed++;
  }

  /** A run's records as tracking has them at its head. */
  private async load(runId: string): Promise<RunState | undefined> {
    const { store, settings } = this.options;
    const repo = settings.repos.tracking;
    const head = await store.head(repo);
    if (head !== this.head) this.forget();
    this.head = head;
    const cached = this.runs.get(runId);
    if (cached) return cached;
    if (!head) return undefined;
    const view = await readRunView(repoTree(store, repo), head, runId);
    if (!view) return undefined;
    // The reducer needs every task's whole stdout; large ones live in their own file.
    for (const task of view.tasks) if (task.stdoutFile) task.stdout = (await store.readFile(repo, head, task.stdoutFile)) ?? '';
    const run = view.run;
    const state = { run, tasks: new Map(view.tasks.map((t) => [t.id, t])) };
    if (!isRunFinal(run)) this.runs.set(runId, state);
    return state;
  }
}

/** Whether tracking has moved past an attempt: the task is final, or a later attempt (or a retry of it) is under way. */
function isSettled(task: TaskRecord, attempt: number): boolean {
  return isFinal(task) || attempt < task.attempts || (attempt === task.attempts && task.state !== 'running');
}
