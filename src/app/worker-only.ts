/**
 * Workers only: `gitjobs worker` on other machines against the same
 * RabbitMQ, and `up`'s own worker process. Imports only what a worker needs
 * (no HTTP server, no forge clients), so that the process stays small and
 * each fork of a task costs little.
 */
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { AmqpQueue } from '../adapters/amqp/queue.js';
import { ProcessExecutor } from '../adapters/process/executor.js';
import type { Executor, Queue } from '../core/ports.js';
import type { Settings } from '../core/settings.js';
import { ConfigSource } from '../worker/config-source.js';
import { Worker } from '../worker/worker.js';
import { createExecutor, type ExecutorKind } from './executors.js';

export async function startWorker(options: { queue: Queue; executor: Executor; sources: ConfigSource; workers: number; settings: Settings; logger: Logger }): Promise<Worker> {
  const { queue, executor, sources, workers, settings, logger } = options;
  const worker = new Worker({ queue, executor, config: sources, concurrency: workers, readAhead: settings.readAhead, outputCap: settings.outputCap, log: logger, lease: settings });
  await worker.start();
  return worker;
}

export interface WorkerProcessOptions {
  workers: number;
  executor: ExecutorKind;
  amqpUrl: string;
  settings: Settings;
  logger: Logger;
  cacheDir?: string;
  /** How long running tasks may finish when stopping, before they are requeued (ms). */
  graceMs?: number;
  /** The unsandboxed warning was said already (by `up`, whose worker process this is). */
  quiet?: boolean;
  /** GITJOBS_API_TOKEN: the built-in host asks for it when it mirrors a forge. */
  apiToken?: string;
}

export async function workerOnly(options: WorkerProcessOptions): Promise<{ stop(graceMs?: number): Promise<void> }> {
  const { settings, logger } = options;
  const cacheDir = options.cacheDir ?? path.join(os.tmpdir(), 'gitjobs-worker-cache');
  const executor = options.quiet && options.executor === 'process' ? new ProcessExecutor() : await createExecutor(options.executor, settings, logger, path.join(cacheDir, 'builds'));
  await executor.check();
  // A worker declares no queue: they are gitjobs up's, which then knows when they were lost.
  const queue = await AmqpQueue.connect({ url: options.amqpUrl, queues: settings.queues, log: logger, role: 'member', maxMessageBytes: settings.maxMessageBytes });
  const sources = new ConfigSource(cacheDir, settings.branch, options.apiToken);
  const worker = await startWorker({ queue, executor, sources, workers: options.workers, settings, logger });
  return {
    stop: async (graceMs = options.graceMs) => {
      await worker.stop(graceMs);
      await queue.close();
    },
  };
}
