/**
 * A worker: takes task attempts from TODO, runs each in the executor, and
 * reports `started` and `finished` on DONE. The TODO message is acked only
 * once the outcome is confirmed by the broker.
 */
import os from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { MessageError, RequeueError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { decode, todoMessage, type TaskEvent, type TodoMessage } from '../core/messages.js';
import type { Consumer, Executor, Queue } from '../core/ports.js';
import { needsLease, type Settings } from '../core/settings.js';
import type { ConfigSource } from './config-source.js';

export interface WorkerOptions {
  queue: Queue;
  executor: Executor;
  config: ConfigSource;
  concurrency: number;
  outputCap: number;
  log: Logger;
  host?: string;
  /** The broker's consumer timeout and the heartbeat period of leased attempts. */
  lease: Pick<Settings, 'consumerTimeoutMs' | 'heartbeatMs'>;
}

export class Worker {
  readonly host: string;
  /** This worker process, as events and container labels name it. */
  readonly id: string;
  private consumer: Consumer | undefined;
  private control: Consumer | undefined;
  private readonly inflight = new Set<Promise<void>>();
  /** Running attempts, to kill them when their run is cancelled or the worker stops. */
  private readonly running = new Map<string, { run: string; controller: AbortController; reason?: 'cancel' | 'shutdown' | 'abandon' }>();
  /** Runs cancelled while this worker was up: their queued attempts are dropped unrun. */
  private readonly cancelled = new Set<string>();

  constructor(private readonly options: WorkerOptions) {
    this.host = options.host ?? os.hostname();
    this.id = `${this.host}:${process.pid}`;
  }

  async start(): Promise<void> {
    const reaped = await this.options.executor.reapOrphans?.(this.host).catch((err: Error) => {
      this.options.log.warn({ err: err.message }, 'could not look for leftover task containers');
      return 0;
    });
    if (reaped) this.options.log.warn({ reaped }, 'removed task containers left behind by a worker that is gone');
    this.control = await this.options.queue.onBroadcast((content) => {
      let msg: { kind?: string; run?: string; task?: string; attempt?: number; worker?: string };
      try {
        msg = JSON.parse(content.toString('utf8'));
      } catch {
        return;
      }
      if (msg.kind === 'abandon' && msg.worker === this.id) {
        // Tracking has this attempt settled already: this copy of its message is a duplicate.
        const r = this.running.get(`${msg.run}/${msg.task}/${msg.attempt}`);
        if (r) {
          r.reason = 'abandon';
          r.controller.abort();
        }
        return;
      }
      if (msg.kind !== 'cancel' || typeof msg.run !== 'string') return;
      this.cancelled.add(msg.run);
      if (this.cancelled.size > 10_000) this.cancelled.delete(this.cancelled.values().next().value!);
      for (const r of this.running.values()) {
        if (r.run !== msg.run) continue;
        r.reason = 'cancel';
        r.controller.abort();
      }
    });
    this.consumer = await this.options.queue.consume('todo', { prefetch: this.options.concurrency }, (content, ackNow) => {
      const p = this.handle(content, ackNow);
      this.inflight.add(p);
      return p.finally(() => this.inflight.delete(p));
    });
    this.options.log.info({ host: this.host, concurrency: this.options.concurrency, executor: this.options.executor.kind }, 'worker started');
  }

  /**
   * Stops taking tasks and lets the running ones finish for up to `graceMs`;
   * those still running then are killed and their messages go back to TODO
   * for another worker.
   */
  async stop(graceMs = 30_000): Promise<void> {
    const timer = setTimeout(() => {
      if (this.running.size) this.options.log.warn({ tasks: this.running.size, graceMs }, 'grace period over: requeueing the tasks still running');
      for (const r of this.running.values()) {
        r.reason ??= 'shutdown';
        r.controller.abort();
      }
    }, graceMs);
    try {
      await this.consumer?.cancel();
      this.consumer = undefined;
      await Promise.allSettled([...this.inflight]);
    } finally {
      clearTimeout(timer);
    }
    await this.control?.cancel();
    this.control = undefined;
  }

  private async handle(content: Buffer, ackNow: () => void): Promise<void> {
    let msg: TodoMessage;
    try {
      msg = decode(todoMessage, 'TODO', content);
    } catch (err) {
      if (err instanceof MessageError) {
        this.options.log.error({ err: err.message }, 'dropped a TODO message that is not a task');
        return;
      }
      throw err;
    }
    const log = this.options.log.child({ run: msg.run, task: msg.task, attempt: msg.attempt });
    if (this.cancelled.has(msg.run)) {
      log.info({}, 'run was cancelled; task dropped unrun');
      return;
    }
    const base = { v: 1 as const, run: msg.run, task: msg.task, attempt: msg.attempt, host: this.host, worker: this.id };
    const publish = (event: TaskEvent) => this.options.queue.publish('done', event);
    /** The outcome of an attempt that gitjobs could not run (no image, an executor error). */
    const failedToRun = (image: string, error: string): TaskEvent => ({
      ...base,
      kind: 'finished',
      image,
      at: new Date().toISOString(),
      exitCode: null,
      durationMs: 0,
      timedOut: false,
      stdout: '',
      output: `${error}\n`,
      truncated: false,
      error,
    });

    let image: string;
    try {
      const source = await this.options.config.worker(msg.config.url, msg.config.commit, msg.worker);
      image = await this.options.executor.prepare(source);
    } catch (err) {
      const error = `worker image: ${(err as Error).message}`;
      log.error({ err: (err as Error).message }, 'could not prepare the worker image');
      const now = new Date().toISOString();
      await publish({ ...base, kind: 'started', image: 'none', at: now });
      await publish(failedToRun('none', error));
      return;
    }
    const imageName = this.options.executor.kind === 'docker' ? image : `${this.options.executor.kind} (unsandboxed)`;
    // A task that may outlive the broker's consumer_timeout is not held unacked (the broker would hand it to
    // another worker while it still runs): it is acked now and held by heartbeats on DONE instead.
    const leased = needsLease(this.options.lease, msg.timeoutMs);
    const leaseMs = this.options.lease.heartbeatMs * 3;
    await publish({ ...base, kind: 'started', image: imageName, at: new Date().toISOString(), ...(leased ? { leaseMs } : {}) });
    if (leased) ackNow();
    // On the fanout exchange, so that every collector sees every heartbeat. A leased attempt is held by them
    // (they carry its lease); any other is held by its message, and they only tell a collector that has just
    // started that a worker still has it, so that it does not queue it again.
    const heartbeat = setInterval(() => {
      this.options.queue.broadcast({ ...base, kind: 'heartbeat', image: imageName, at: new Date().toISOString(), ...(leased ? { leaseMs } : {}) }).catch(() => undefined);
    }, this.options.lease.heartbeatMs);
    log.debug({ argv: msg.argv, leased }, 'task started');
    // Output goes out as it comes, a few times a second, for live logs; the whole is in the outcome.
    const decoder = new StringDecoder('utf8');
    let pending = '';
    let seq = 0;
    let flushing: Promise<unknown> = Promise.resolve();
    const flush = () => {
      if (!pending) return flushing;
      const data = pending;
      pending = '';
      const body = { run: msg.run, task: msg.task, attempt: msg.attempt, seq: seq++, data };
      flushing = flushing.then(() => this.options.queue.broadcast(body, 'output').catch(() => undefined));
      return flushing;
    };
    const ticker = setInterval(flush, 250);
    const onOutput = (chunk: Buffer) => {
      pending += decoder.write(chunk);
      if (pending.length > 64 * 1024) void flush();
    };
    let result;
    const key = `${msg.run}/${msg.task}/${msg.attempt}`;
    const entry: { run: string; controller: AbortController; reason?: 'cancel' | 'shutdown' | 'abandon' } = { run: msg.run, controller: new AbortController() };
    this.running.set(key, entry);
    try {
      result = await this.options.executor.run({
        signal: entry.controller.signal,
        onOutput,
        image,
        argv: msg.argv,
        timeoutMs: msg.timeoutMs,
        limits: msg.limits,
        labels: {
          'io.gitjobs.run': msg.run,
          'io.gitjobs.task-id': msg.task,
          'io.gitjobs.attempt': String(msg.attempt),
          'io.gitjobs.worker-host': this.host,
          'io.gitjobs.worker-pid': String(process.pid),
        },
        env: { GITJOBS_RUN: msg.run, GITJOBS_TASK: msg.task, GITJOBS_ATTEMPT: String(msg.attempt) },
        outputCap: this.options.outputCap,
      });
    } catch (err) {
      const error = `${this.options.executor.kind} executor: ${(err as Error).message}`;
      log.error({ err: (err as Error).message }, 'task could not run');
      await publish(failedToRun(imageName, error));
      return;
    } finally {
      this.running.delete(key);
      clearInterval(heartbeat);
      clearInterval(ticker);
      pending += decoder.end();
      await flush();
    }
    if (result.aborted) {
      if (entry.reason === 'shutdown') {
        // Its message is already acked: hand the attempt on by queueing it again.
        if (leased) return this.options.queue.publish('todo', msg);
        throw new RequeueError(`${key}: worker shutting down`);
      }
      log.info({}, entry.reason === 'abandon' ? 'task killed: a duplicate copy of an attempt that tracking has settled' : 'task killed: its run was cancelled');
      return;
    }
    log.info({ exitCode: result.exitCode, durationMs: result.durationMs, timedOut: result.timedOut }, 'task finished');
    await publish({ ...base, kind: 'finished', image: imageName, at: new Date().toISOString(), ...result });
  }
}
