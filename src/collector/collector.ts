/**
 * The collector: takes what workers report on DONE and commits each
 * transition to tracking, one commit per transition; once every task of a
 * run is final, it commits the result to the done repository. A DONE message
 * is acked only once its commits are durable, so commits of many messages go
 * to disk together.
 *
 * This file wires the rooms together; each does one thing:
 *   intake.ts      a report -> transition commits
 *   leases.ts      attempts held by heartbeats, and unclaimed ones after a restart
 *   retries.ts     backoff and retry, dead letters
 *   completion.ts  the result in the done repository
 *   cancel.ts      cancelling a run
 *   recovery.ts    reconciling tracking with the queues on start
 *   run-book.ts    the runs in memory;  step.ts  commits staged, effects once durable
 */
import { readTask, readTaskResult, repoTree, unfinishedRuns } from '../core/run-reader.js';
import type { ResultCache } from '../core/result-cache.js';
import type { ReuseSource } from '../core/tracking/reuse.js';
import type { ReusedFrom } from '../core/task.js';
import { ConflictError } from '../core/errors.js';
import { Serial } from '../core/serial.js';
import { systemClock, isoAt } from '../core/clock.js';
import { formatDuration } from '../core/duration.js';
import type { TaskEvent, TodoMessage } from '../core/channels.js';
import { isFinal } from '../core/task.js';
import type { Logger } from '../core/logger.js';
import type { Clock, Consumer, StageOptions } from '../core/ports.js';
import type { RunResult } from '../core/tracking/complete-run.js';
import { cancelRun, type CancelOutcome } from './cancel.js';
import { Completion } from './completion.js';
import { Intake, type IntakeOptions } from './intake.js';
import { commitTaskFiles } from './task-files.js';
import { LeaseKeeper, type Lease } from './leases.js';
import { emptyReport, recoverRun, type RecoveryReport } from './recovery.js';
import { Retries } from './retries.js';
import { RunBook } from './run-book.js';
import { Step } from './step.js';
import { sendWithInputs } from '../core/inputs.js';

export type { CancelOutcome } from './cancel.js';
export type { RecoveryReport } from './recovery.js';

/** Bytes of DONE_LARGE messages the collector holds at most (its prefetch is this over the largest message). */
export const LARGE_REPORTS_BUDGET = 512 * 1024 * 1024;

/** How many large reports the collector holds at once: as many of the largest messages as fit in the budget, at least 1. */
export function largePrefetch(maxMessageBytes: number): number {
  return Math.max(1, Math.floor(LARGE_REPORTS_BUDGET / maxMessageBytes));
}

export interface CollectorOptions extends StageOptions {
  /** How many DONE messages may be in hand at once: the more, the more transitions go to disk together. */
  prefetch?: number;
  /** The result cache's index, which the dispatcher reads: results committed here are added to it. */
  resultCache?: ResultCache;
  onRunFinished?: (result: RunResult) => void;
}

/** Tries of a step before a conflict with another writer is given up on. */
const CONFLICT_TRIES = 20;

export class Collector {
  readonly book: RunBook;
  private readonly clock: Clock;
  /** Read-modify-stage steps on tracking, one at a time; waiting for durability happens outside. */
  private readonly serial = new Serial();
  private readonly retries: Retries;
  private readonly intake: Intake;
  private readonly leases: LeaseKeeper;
  private consumers: Consumer[] = [];

  constructor(private readonly options: CollectorOptions) {
    const { store, queue, settings, configUrl, log, observer } = options;
    this.clock = options.clock ?? systemClock;
    this.book = new RunBook(store, settings.repos.tracking, settings.resultCap);
    this.retries = new Retries({ queue, clock: this.clock, settings, configUrl, log, send: (m) => sendWithInputs(queue, store, settings.repos, m) });
    const completion = new Completion({ store, settings, clock: this.clock, ...(observer ? { observer } : {}), ...(options.onRunFinished ? { onRunFinished: options.onRunFinished } : {}) });
    const readResult = async (from: ReusedFrom): Promise<ReuseSource | undefined> => {
      const source = repoTree(store, settings.repos.tracking);
      const found = await readTask(source, from.commit, from.run, from.task).catch(() => undefined);
      if (!found) return undefined;
      return { from, record: found.task, ...(await readTaskResult(source, from.commit, found.paths, found.task)) };
    };
    const commitFiles: IntakeOptions['commitFiles'] = (run, task, attempt, files) => commitTaskFiles(store, settings.repos.done, run, task, attempt, files);
    this.intake = new Intake({ queue, settings, clock: this.clock, retries: this.retries, completion, readResult, commitFiles, ...(observer ? { observer } : {}), ...(options.resultCache ? { resultCache: options.resultCache } : {}) });
    this.leases = new LeaseKeeper({
      clock: this.clock,
      checkEveryMs: Math.max(200, Math.min(5000, settings.heartbeatMs)),
      onLost: (lease) => this.lost(lease),
      onUnclaimed: (message) => this.unclaimed(message),
    });
  }

  async start(): Promise<void> {
    const { queue, prefetch, settings } = this.options;
    this.consumers.push(await queue.consume('done', { prefetch: prefetch ?? 1024 }, (event) => this.report(event)));
    // Large reports (files, long output) a few at a time, however many tasks finish at once: see reportQueue.
    this.consumers.push(await queue.consume('large', { prefetch: largePrefetch(settings.maxMessageBytes) }, (event) => this.report(event)));
    this.consumers.push(
      await queue.subscribe('control', (message) => {
        if (message.kind === 'heartbeat') this.leases.heartbeat(message);
      }),
    );
    this.leases.start();
  }

  async stop(): Promise<void> {
    await this.leases.stop();
    for (const c of this.consumers.splice(0)) await c.cancel();
    this.retries.stop();
    await this.serial.idle();
  }

  /** Attempts this collector holds by their heartbeats (acked at start, long tasks). */
  get leasesHeld(): number {
    return this.leases.held;
  }

  /** One report from DONE. Resolves (and the message is acked) once its transitions are durable. */
  report(event: TaskEvent): Promise<void> {
    this.leases.claimed(event);
    if (event.kind === 'heartbeat') {
      this.leases.heartbeat(event);
      return Promise.resolve();
    }
    if (event.kind === 'started' && event.leaseMs) this.leases.hold(event, event.leaseMs);
    if (event.kind === 'finished') this.leases.release(event);
    const log = this.options.log.child({ run: event.run, task: event.task, attempt: event.attempt });
    return this.step(log, (step) => this.intake.apply(step, this.book, event, log)).catch((err: Error) => this.unapplied(event, err, log));
  }

  /**
   * A report that could not be applied (a bug, a result too big for memory,
   * a record that does not parse) ends its attempt, failed, with the error
   * recorded; its retries apply, and the run finishes as usual. Only when
   * even that cannot be written does the message go back to DONE, whose
   * delivery limit moves it to DEAD in the end.
   */
  private async unapplied(event: TaskEvent, err: Error, log: Logger): Promise<void> {
    if (err instanceof ConflictError || event.kind === 'heartbeat') throw err;
    const error = `gitjobs could not apply this attempt's ${event.kind} report: ${err.message || err.name}`;
    log.error({ err: err.message, kind: event.kind }, 'could not apply a report; its attempt ends failed with the error');
    await this.step(log, async (step) => {
      const task = (await this.book.load(event.run))?.tasks.get(event.task);
      if (!task || isFinal(task) || task.attempts > event.attempt) return;
      const failed: TaskEvent = {
        v: 1,
        kind: 'finished',
        run: event.run,
        task: event.task,
        attempt: event.attempt,
        host: event.host,
        ...(event.worker ? { worker: event.worker } : {}),
        image: 'image' in event ? event.image : 'unknown',
        at: isoAt(this.clock),
        exitCode: null,
        durationMs: 'durationMs' in event ? event.durationMs : 0,
        timedOut: false,
        stdout: '',
        output: `${error}\n`,
        truncated: false,
        error,
      };
      await this.intake.apply(step, this.book, failed, log);
    });
  }

  /**
   * Cancels a run: every task not yet final ends `cancelled` (one commit
   * each), workers are told to kill its running attempts, and the result
   * records the cancellation.
   */
  cancel(runId: string, reason: string): Promise<CancelOutcome> {
    const log = this.options.log.child({ run: runId });
    return this.step(log, (step) => cancelRun({ queue: this.options.queue, clock: this.clock, intake: this.intake }, step, this.book, runId, reason, log));
  }

  /** Reconciles tracking with the queues (recovery.ts). */
  async recover(): Promise<RecoveryReport> {
    const { store, settings, log } = this.options;
    const report = emptyReport();
    const { head } = await store.basis(settings.repos.tracking);
    if (!head) return report;
    const ctx = { clock: this.clock, settings, intake: this.intake, leases: this.leases, retries: this.retries, queue: this.options.queue };
    for (const run of await unfinishedRuns(repoTree(store, settings.repos.tracking), head)) {
      const runLog = log.child({ run: run.id });
      await this.step(runLog, (step) => recoverRun(ctx, step, this.book, run.id, report, runLog));
    }
    if (report.republished || report.held || report.watched || report.completed || report.requeued) log.info({ ...report }, 'recovered unfinished runs from tracking');
    return report;
  }

  /**
   * Runs a read-modify-stage step on tracking, one at a time, then waits
   * for its commits to be durable. Whenever another writer got there first,
   * the runs are read again and the step is taken again.
   */
  private async step<T>(log: Logger, fn: (step: Step) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const step = new Step(this.options.store, this.book, this.options.observer, () => this.clock.now());
      try {
        const value = await this.serial.run(() => fn(step));
        await step.settle();
        return value;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= CONFLICT_TRIES) throw err;
        log.debug({ err: err.message }, 'tracking moved under us; reading it again');
        await this.serial.run(async () => this.book.forget());
      }
    }
  }

  /** A leased attempt whose heartbeats stopped: its worker is gone. It fails as `worker lost`, and its retries apply. */
  private lost(lease: Lease): Promise<void> {
    const log = this.options.log.child({ run: lease.run, task: lease.task, attempt: lease.attempt });
    return this.step(log, async (step) => {
      const task = (await this.book.load(lease.run))?.tasks.get(lease.task);
      if (!task || task.state !== 'running' || task.attempts !== lease.attempt) return;
      const error = `worker lost: no heartbeat from ${task.worker?.id ?? task.worker?.host ?? 'its worker'} for ${formatDuration(lease.leaseMs)}`;
      log.warn({}, error);
      const now = this.clock.now();
      const started = task.startedAt ? Date.parse(task.startedAt) : now;
      const event: TaskEvent = {
        v: 1,
        kind: 'finished',
        run: lease.run,
        task: lease.task,
        attempt: lease.attempt,
        host: task.worker?.host ?? 'unknown',
        ...(task.worker?.id ? { worker: task.worker.id } : {}),
        image: task.worker?.image ?? 'unknown',
        at: isoAt(this.clock),
        exitCode: null,
        durationMs: Math.max(0, now - started),
        timedOut: false,
        stdout: '',
        output: `${error}\n`,
        truncated: false,
        error,
      };
      await this.intake.apply(step, this.book, event, log);
    }).catch((err: Error) => log.error({ err: err.message }, 'could not record a lost worker'));
  }

  /** A running attempt that no worker reports holding (its message went with the queues): queued again. */
  private unclaimed(message: TodoMessage): Promise<void> {
    const log = this.options.log.child({ run: message.run, task: message.task, attempt: message.attempt });
    return this.step(log, async (step) => {
      const task = (await this.book.load(message.run))?.tasks.get(message.task);
      // Another collector may have seen it end meanwhile.
      if (!task || task.state !== 'running' || task.attempts !== message.attempt) return;
      log.warn({}, 'a running attempt that no worker reports holding; queued again');
      step.then(() => this.retries.sendLater(message, 0));
    }).catch((err: Error) => log.error({ err: err.message }, 'could not check an unclaimed attempt; the next start does'));
  }
}
