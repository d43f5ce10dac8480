/**
 * A worker: takes task attempts from TODO, runs each (attempt.ts), and
 * listens on CONTROL for runs cancelled and duplicate attempts to abandon.
 * A TODO message is acked only once the attempt's outcome is confirmed on
 * DONE, so an attempt whose worker dies is delivered to another.
 */
import os from 'node:os';
import { attemptKey } from '../core/channels.js';
import { systemClock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Clock, Consumer, Delivery, Executor, Queue } from '../core/ports.js';
import type { Settings } from '../core/settings.js';
import { RequeueError } from '../core/errors.js';
import { runAttempt, type Control, type WorkerSources } from './attempt.js';
import { Slots } from './slots.js';

export interface WorkerOptions {
  queue: Queue;
  executor: Executor;
  /** Where each task's worker image comes from (config-source.ts). */
  config: WorkerSources;
  concurrency: number;
  /**
   * Messages held beyond the slots (Settings.readAhead; none unless said).
   * A worker otherwise holds only what it can run: a task never waits behind
   * this worker's running ones while another worker is idle.
   */
  readAhead?: number;
  outputCap: number;
  log: Logger;
  host?: string;
  clock?: Clock;
  /** The broker's consumer timeout and the heartbeat period of running attempts. */
  lease: Pick<Settings, 'consumerTimeoutMs' | 'heartbeatMs'>;
}

/** How many cancelled runs a worker remembers, to drop their queued attempts unrun. */
const CANCELLED_MEMORY = 10_000;

export class Worker {
  readonly host: string;
  /** This worker process, as events and container labels name it. */
  readonly id: string;
  private readonly clock: Clock;
  private consumer: Consumer | undefined;
  private control: Consumer | undefined;
  private readonly inflight = new Set<Promise<void>>();
  /** Running attempts, to kill them when their run is cancelled or the worker stops. */
  private readonly running = new Map<string, Control>();
  private readonly cancelled = new Set<string>();
  private readonly slots: Slots;

  constructor(private readonly options: WorkerOptions) {
    this.host = options.host ?? os.hostname();
    this.id = `${this.host}:${process.pid}`;
    this.clock = options.clock ?? systemClock;
    this.slots = new Slots(options.concurrency);
  }

  async start(): Promise<void> {
    const { queue, executor, log } = this.options;
    const reaped = await executor.reapOrphans?.(this.host).catch((err: Error) => {
      log.warn({ err: err.message }, 'could not look for leftover task containers');
      return 0;
    });
    if (reaped) log.warn({ reaped }, 'removed task containers left behind by a worker that is gone');
    this.control = await queue.subscribe('control', (message) => {
      if (message.kind === 'abandon' && message.worker === this.id) this.stop1(attemptKey(message), 'abandon');
      if (message.kind === 'cancel') this.cancelRun(message.run);
    });
    // A held message (read ahead, or one that came while a leased attempt, acked at its start, runs) that waits for
    // a slot longer than holdMs() is given back.
    const prefetch = this.options.concurrency + (this.options.readAhead ?? 0);
    this.consumer = await queue.consume('todo', { prefetch }, (message, delivery) => {
      const p = this.take(message, delivery);
      this.inflight.add(p);
      return p.finally(() => this.inflight.delete(p));
    });
    log.info({ host: this.host, concurrency: this.options.concurrency, readAhead: this.options.readAhead ?? 0, executor: executor.kind }, 'worker started');
  }

  /**
   * Stops taking tasks and lets the running ones finish for up to `graceMs`;
   * those still running then are killed and their messages go back to TODO
   * for another worker.
   */
  async stop(graceMs = 30_000): Promise<void> {
    // Messages held for a slot that never came go back at once: only running attempts get the grace.
    for (const [key, control] of this.running) if (!control.running) this.stop1(key, 'shutdown');
    const cancelGrace = this.clock.after(graceMs, () => {
      if (this.running.size) this.options.log.warn({ tasks: this.running.size, graceMs }, 'grace period over: requeueing the tasks still running');
      for (const key of this.running.keys()) this.stop1(key, 'shutdown');
    });
    try {
      await this.consumer?.cancel();
      this.consumer = undefined;
      await Promise.allSettled([...this.inflight]);
    } finally {
      cancelGrace();
    }
    await this.control?.cancel();
    this.control = undefined;
  }

  /**
   * How long a message waits here for a slot before it is given back. One
   * read ahead (as asked) waits up to a quarter of the broker's consumer
   * timeout. Without read-ahead a message waits only because a leased
   * attempt, acked at its start, left room for it: it goes back after three
   * heartbeats (at most that quarter), so that a worker with a free slot
   * takes it, instead of it waiting here for a task of hours.
   */
  private holdMs(): number {
    const { consumerTimeoutMs, heartbeatMs } = this.options.lease;
    return this.options.readAhead ? consumerTimeoutMs / 4 : Math.min(consumerTimeoutMs / 4, 3 * heartbeatMs);
  }

  /** Attempts running now. */
  get busy(): number {
    return this.running.size;
  }

  private stop1(key: string, reason: Control['reason']): void {
    const r = this.running.get(key);
    if (!r) return;
    r.reason ??= reason;
    r.controller.abort();
  }

  private cancelRun(run: string): void {
    this.cancelled.add(run);
    if (this.cancelled.size > CANCELLED_MEMORY) this.cancelled.delete(this.cancelled.values().next().value!);
    for (const [key, r] of this.running) if (r.run === run) this.stop1(key, 'cancel');
  }

  private async take(message: Parameters<typeof runAttempt>[1], delivery: Delivery): Promise<void> {
    const log = this.options.log.child({ run: message.run, task: message.task, attempt: message.attempt });
    if (this.cancelled.has(message.run)) {
      log.info({}, 'run was cancelled; task dropped unrun');
      return;
    }
    const key = attemptKey(message);
    const control: Control = { run: message.run, controller: new AbortController() };
    this.running.set(key, control);
    try {
      // Its turn; one that waits too long is given back for another worker, before the broker takes it back.
      const waited = new AbortController();
      const cancelWait = this.clock.after(this.holdMs(), () => waited.abort());
      const abortWait = () => waited.abort();
      control.controller.signal.addEventListener('abort', abortWait);
      const release = await this.slots.acquire(waited.signal);
      control.running = Boolean(release);
      cancelWait();
      control.controller.signal.removeEventListener('abort', abortWait);
      if (!release) {
        if (control.reason === 'cancel' || control.reason === 'abandon') {
          log.info({}, control.reason === 'cancel' ? 'run was cancelled; task dropped unrun' : 'a duplicate copy of an attempt that tracking has settled; dropped unrun');
          return;
        }
        // Stopping: back at once, in its place.
        if (control.reason === 'shutdown') throw new RequeueError(`${key}: no slot free in time (shutdown)`);
        // Waited its time: published again (at the queue's tail) and this delivery acked, rather than returned. A
        // held message may go back many times while a long task runs, and RabbitMQ 4's quorum queues count every
        // return against a delivery limit (20 unless set) and drop the message past it.
        await this.options.queue.publish('todo', message);
        log.debug({}, 'no slot free in time; task given back for another worker');
        return;
      }
      const { queue, executor, config, outputCap, lease } = this.options;
      await runAttempt({ queue, executor, sources: config, clock: this.clock, outputCap, lease, host: this.host, workerId: this.id, pid: process.pid }, message, control, delivery, log, release);
    } finally {
      this.running.delete(key);
    }
  }
}
