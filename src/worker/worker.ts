/**
 * A worker: takes task attempts from TODO, runs each in the executor, and
 * reports `started` and `finished` on DONE. The TODO message is acked only
 * once the outcome is confirmed by the broker.
 */
import os from 'node:os';
import { MessageError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { decode, todoMessage, type TaskEvent, type TodoMessage } from '../core/messages.js';
import type { Consumer, Executor, Queue } from '../core/ports.js';
import type { ConfigSource } from './config-source.js';

export interface WorkerOptions {
  queue: Queue;
  executor: Executor;
  config: ConfigSource;
  concurrency: number;
  outputCap: number;
  log: Logger;
  host?: string;
}

export class Worker {
  readonly host: string;
  /** This worker process, as events and container labels name it. */
  readonly id: string;
  private consumer: Consumer | undefined;
  private readonly inflight = new Set<Promise<void>>();

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
    this.consumer = await this.options.queue.consume('todo', { prefetch: this.options.concurrency }, (content) => {
      const p = this.handle(content);
      this.inflight.add(p);
      return p.finally(() => this.inflight.delete(p));
    });
    this.options.log.info({ host: this.host, concurrency: this.options.concurrency, executor: this.options.executor.kind }, 'worker started');
  }

  /** Stops taking tasks and waits for the running ones. */
  async stop(): Promise<void> {
    await this.consumer?.cancel();
    this.consumer = undefined;
    await Promise.allSettled([...this.inflight]);
  }

  private async handle(content: Buffer): Promise<void> {
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
    const base = { v: 1 as const, run: msg.run, task: msg.task, attempt: msg.attempt, host: this.host, worker: this.id };
    const publish = (event: TaskEvent) => this.options.queue.publish('done', event);

    let image: string;
    try {
      const source = await this.options.config.worker(msg.config.url, msg.config.commit, msg.worker);
      image = await this.options.executor.prepare(source);
    } catch (err) {
      const error = `worker image: ${(err as Error).message}`;
      log.error({ err: (err as Error).message }, 'could not prepare the worker image');
      const now = new Date().toISOString();
      await publish({ ...base, kind: 'started', image: 'none', at: now });
      await publish({ ...base, kind: 'finished', image: 'none', at: now, exitCode: null, durationMs: 0, timedOut: false, stdout: '', output: `${error}\n`, truncated: false, error });
      return;
    }
    const imageName = this.options.executor.kind === 'docker' ? image : `${this.options.executor.kind} (unsandboxed)`;
    await publish({ ...base, kind: 'started', image: imageName, at: new Date().toISOString() });
    log.debug({ argv: msg.argv }, 'task started');
    let result;
    try {
      result = await this.options.executor.run({
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
      await publish({ ...base, kind: 'finished', image: imageName, at: new Date().toISOString(), exitCode: null, durationMs: 0, timedOut: false, stdout: '', output: `${error}\n`, truncated: false, error });
      return;
    }
    log.info({ exitCode: result.exitCode, durationMs: result.durationMs, timedOut: result.timedOut }, 'task finished');
    await publish({ ...base, kind: 'finished', image: imageName, at: new Date().toISOString(), ...result });
  }
}
