/**
 * The composition root: wires the adapters to the core for `gitjobs up`
 * (built-in Git host, HTTP server, dispatcher, collector, workers) and for
 * `gitjobs worker` (workers only).
 */
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { AmqpQueue } from '../adapters/amqp/queue.js';
import { BuiltinForge } from '../adapters/builtin/forge.js';
import { DockerExecutor } from '../adapters/docker/executor.js';
import { LocalGitStore } from '../adapters/git/local-store.js';
import { ProcessExecutor, UNSANDBOXED_WARNING } from '../adapters/process/executor.js';
import type { Executor } from '../core/ports.js';
import type { Settings } from '../core/settings.js';
import type { RunResult } from '../core/tracking.js';
import { Collector } from '../collector/collector.js';
import { Dispatcher, type DispatchOutcome } from '../dispatcher/dispatcher.js';
import { buildServer } from '../server/app.js';
import { ConfigSource } from '../worker/config-source.js';
import { Worker } from '../worker/worker.js';

export type ExecutorKind = 'docker' | 'process';

export interface UpOptions {
  home: string;
  host: string;
  port: number;
  workers: number;
  executor: ExecutorKind;
  amqpUrl: string;
  settings: Settings;
  logger: Logger;
  /** URL other machines use to reach this server (config repository for remote workers). */
  publicUrl?: string;
  onRunFinished?: (result: RunResult) => void;
  onDispatched?: (outcomes: DispatchOutcome[]) => void;
}

export interface Running {
  url: string;
  app: FastifyInstance;
  store: LocalGitStore;
  forge: BuiltinForge;
  queue: AmqpQueue;
  dispatcher: Dispatcher;
  stop(): Promise<void>;
}

export function createExecutor(kind: ExecutorKind, settings: Settings, logger: Logger): Executor {
  if (kind === 'process') {
    logger.warn({}, UNSANDBOXED_WARNING);
    return new ProcessExecutor();
  }
  return new DockerExecutor({ baseImage: settings.baseImage });
}

export async function up(options: UpOptions): Promise<Running> {
  const { settings, logger } = options;
  const queue = await AmqpQueue.connect({ url: options.amqpUrl, queues: settings.queues, log: logger });
  const cleanup: (() => Promise<unknown>)[] = [() => queue.close()];
  const stopAll = async () => {
    for (const fn of cleanup.reverse()) await fn().catch((err) => logger.error({ err: String(err) }, 'error while stopping'));
  };
  try {
    const executor = options.workers > 0 ? createExecutor(options.executor, settings, logger) : undefined;
    await executor?.check();

    const store = new LocalGitStore(path.join(options.home, 'repos'), settings.branch);
    const forge = new BuiltinForge(store, settings.repos);
    const created = await forge.ensureRepos();
    if (created.length) logger.info({ created }, 'repositories created from repos-template');

    const app = await buildServer({ logger, plugins: [(a) => forge.register(a)] });
    await app.listen({ host: options.host, port: options.port });
    cleanup.push(() => app.close());
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : options.port;
    const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
    forge.setBaseUrl(options.publicUrl ?? url);
    const configUrl = forge.cloneUrl(settings.repos.config);

    const collector = new Collector({ store, queue, settings, configUrl, log: logger, ...(options.onRunFinished ? { onRunFinished: options.onRunFinished } : {}) });
    await collector.start();
    cleanup.push(() => collector.stop());

    const dispatcher = new Dispatcher({ store, queue, settings, configUrl, log: logger });
    forge.onPush((event) => {
      dispatcher.handlePush(event).then(
        (outcomes) => options.onDispatched?.(outcomes),
        (err: Error) => logger.error({ err: err.message, repo: event.repo, after: event.after }, 'dispatch failed'),
      );
    });

    if (executor) {
      const worker = new Worker({
        queue,
        executor,
        config: new ConfigSource(path.join(options.home, 'cache'), settings.branch),
        concurrency: options.workers,
        outputCap: settings.outputCap,
        log: logger,
      });
      await worker.start();
      cleanup.push(() => worker.stop());
    }
    return { url, app, store, forge, queue, dispatcher, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

export interface WorkerProcessOptions {
  workers: number;
  executor: ExecutorKind;
  amqpUrl: string;
  settings: Settings;
  logger: Logger;
  cacheDir?: string;
}

/** Workers only: for other machines against the same RabbitMQ. */
export async function workerOnly(options: WorkerProcessOptions): Promise<{ stop(): Promise<void> }> {
  const { settings, logger } = options;
  const executor = createExecutor(options.executor, settings, logger);
  await executor.check();
  const queue = await AmqpQueue.connect({ url: options.amqpUrl, queues: settings.queues, log: logger });
  const worker = new Worker({
    queue,
    executor,
    config: new ConfigSource(options.cacheDir ?? path.join(os.tmpdir(), 'gitjobs-worker-cache'), settings.branch),
    concurrency: options.workers,
    outputCap: settings.outputCap,
    log: logger,
  });
  await worker.start();
  return {
    stop: async () => {
      await worker.stop();
      await queue.close();
    },
  };
}
