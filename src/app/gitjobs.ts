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
import { MirrorGitStore } from '../adapters/git/mirror-store.js';
import { GiteaForge } from '../adapters/forges/gitea.js';
import { GitHubForge } from '../adapters/forges/github.js';
import type { GitStore, RunObserver } from '../core/ports.js';
import type { PushEvent } from '../core/events.js';
import { registerWebhooks } from '../server/webhooks.js';
import { registerApi } from '../server/api.js';
import { registerQueueRoutes } from '../server/queues.js';
import { registerDashboard } from '../server/dashboard.js';
import { LiveHub } from '../server/live.js';
import { TrackingIndex } from '../core/tracking-index.js';
import { Metrics } from './metrics.js';
import { combineObservers } from '../core/ports.js';
import { Poller } from './poller.js';
import { StatusReporter } from './status-reporter.js';
import { amqpPassword, MaskingGitStore, SecretMasker } from './secrets.js';
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

/** Where the four repositories live when not on the built-in host. */
export type RemoteForgeOptions =
  | { kind: 'github'; owner: string; token: string; apiUrl?: string; gitBaseUrl?: string }
  | { kind: 'gitea'; owner: string; token: string; url: string; gitBaseUrl?: string };

export function createRemoteForge(options: RemoteForgeOptions): GitHubForge | GiteaForge {
  if (options.kind === 'github') {
    return new GitHubForge({ token: options.token, owner: options.owner, ...(options.apiUrl ? { apiUrl: options.apiUrl } : {}), ...(options.gitBaseUrl ? { gitBaseUrl: options.gitBaseUrl } : {}) });
  }
  return new GiteaForge({ token: options.token, owner: options.owner, url: options.url, ...(options.gitBaseUrl ? { gitBaseUrl: options.gitBaseUrl } : {}) });
}

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
  /** Repositories on GitHub or Gitea instead of the built-in host. */
  forge?: RemoteForgeOptions;
  /** Secret that webhook deliveries must be signed with. */
  webhookSecret?: string;
  /** Poll the forge's todo and config branches this often (ms). */
  pollMs?: number;
  /** Bearer token for the API endpoints that change anything. */
  apiToken?: string;
  /** How long running tasks may finish when stopping, before they are requeued (ms). */
  graceMs?: number;
  /** Masks secrets in what is committed; made from the secrets above when not given. */
  masker?: SecretMasker;
}

export interface Running {
  url: string;
  app: FastifyInstance;
  store: GitStore & { log(repo: string, depth?: number): Promise<{ oid: string; message: string }[]> };
  /** Serves the repositories (or, with a remote forge, read-only mirrors of them) over smart HTTP. */
  forge: BuiltinForge;
  poller?: Poller;
  statuses?: StatusReporter;
  metrics: Metrics;
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

    let store: LocalGitStore | MirrorGitStore;
    let local: LocalGitStore;
    let remote: GitHubForge | GiteaForge | undefined;
    let baseline: Record<string, string | undefined> = {};
    if (options.forge) {
      remote = createRemoteForge(options.forge);
      const mirrors = new MirrorGitStore({
        root: path.join(options.home, 'mirrors'),
        branch: settings.branch,
        urls: Object.fromEntries(Object.values(settings.repos).map((name) => [name, remote!.cloneUrl(name)])),
        auth: remote.gitAuth,
        log: logger,
      });
      // What the mirrors held before this start: pushes made while gitjobs was down are found by the first poll.
      for (const name of [settings.repos.todo, settings.repos.config]) baseline[name] = await mirrors.local.head(name);
      await mirrors.init();
      cleanup.push(() => mirrors.close());
      store = mirrors;
      local = mirrors.local;
    } else {
      store = local = new LocalGitStore(path.join(options.home, 'repos'), settings.branch, logger);
    }
    // With an API token, pushing to the built-in host needs it as password.
    const forge = new BuiltinForge(local, settings.repos, { pushable: remote ? 'none' : 'todo+config', ...(options.apiToken ? { token: options.apiToken, tokenFor: 'push' as const } : {}) });
    const masker = options.masker ?? new SecretMasker([options.webhookSecret, options.apiToken, options.forge?.token, amqpPassword(options.amqpUrl)]);
    // Everything that writes tracking and done goes through the masking store.
    const masked: GitStore = new MaskingGitStore(store, masker, new Set([settings.repos.tracking, settings.repos.done]));
    if (!remote) {
      const created = await forge.ensureRepos();
      if (created.length) logger.info({ created }, 'repositories created from repos-template');
    }

    const live = new LiveHub();
    const index = new TrackingIndex(masked, settings.repos.tracking);
    const metrics = new Metrics({ index, queueStats: (q) => queue.stats(q) });
    const outputFeed = await queue.onBroadcast((content) => live.output(content), 'output');
    cleanup.push(() => outputFeed.cancel());
    let dispatcher: Dispatcher | undefined;
    let collector: Collector | undefined;
    // The server listens before the collector has recovered and the dispatcher exists (their URLs need its port):
    // a webhook, a cancel or a re-run arriving meanwhile waits for them instead of failing.
    let markReady!: () => void;
    const ready = new Promise<void>((resolve) => (markReady = resolve));
    const cancel = async (runId: string, reason: string) => {
      await ready;
      return collector!.cancel(runId, reason);
    };
    let prebuild: ((commit: string) => Promise<void>) | undefined;
    const onPush = (event: PushEvent) => {
      ready.then(() => dispatcher!.handlePush(event)).then(
        (outcomes) => {
          options.onDispatched?.(outcomes);
          if (event.repo === settings.repos.config && event.ref === `refs/heads/${settings.branch}`) void prebuild?.(event.after);
        },
        (err: Error) => logger.error({ err: err.message, repo: event.repo, after: event.after, source: event.source }, 'dispatch failed'),
      );
    };
    const app = await buildServer({
      logger,
      plugins: [
        (a) => forge.register(a),
        (a) =>
          registerWebhooks(a, {
            secret: options.webhookSecret,
            branch: settings.branch,
            repos: [settings.repos.todo, settings.repos.config],
            onPush,
            onOutcome: (source, outcome) => metrics.webhooks.inc({ source, outcome }),
          }),
        (a) => live.register(a, masked, settings.repos.tracking),
        (a) => registerDashboard(a),
        (a) =>
          a.get('/metrics', { schema: { hide: true } }, async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())),
        (a) =>
          registerApi(a, {
            store: masked,
            trackingRepo: settings.repos.tracking,
            index,
            cancel,
            rerun: async (runId) => {
              await ready;
              return dispatcher!.rerun(runId);
            },
            apiToken: options.apiToken,
            // On a forge, its own commit page; here, the built-in host's plain text.
            commitUrl: (sha) => (remote ? `${remote.cloneUrl(settings.repos.tracking).replace(/\.git$/, '')}/commit/${sha}` : `/git/${settings.repos.tracking}.git/commit/${sha}`),
          }),
        (a) => registerQueueRoutes(a, { service: queue.service, reserved: Object.values(settings.queues), apiToken: options.apiToken }),
      ],
    });
    await app.listen({ host: options.host, port: options.port });
    cleanup.push(() => app.close());
    // Open event streams would hold the server's close: end them first.
    cleanup.push(async () => live.close());
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : options.port;
    const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
    forge.setBaseUrl(options.publicUrl ?? url);
    const configUrl = forge.cloneUrl(settings.repos.config);

    const statuses = remote ? new StatusReporter(remote, settings.repos.todo, options.publicUrl ?? url, logger) : undefined;
    const observer: RunObserver = combineObservers(statuses, live, metrics);
    collector = new Collector({ store: masked, queue, settings, configUrl, log: logger, observer, ...(options.onRunFinished ? { onRunFinished: options.onRunFinished } : {}) });
    await collector.start();
    cleanup.push(() => collector!.stop());
    // Git is the system of record: whatever it says is unfinished goes back on the queues.
    await collector.recover();

    dispatcher = new Dispatcher({ store: masked, queue, settings, configUrl, log: logger, cancel, observer });
    markReady();
    forge.onPush(onPush);

    let poller: Poller | undefined;
    if (options.pollMs && store instanceof MirrorGitStore) {
      poller = new Poller({ store, repos: [settings.repos.todo, settings.repos.config], branch: settings.branch, intervalMs: options.pollMs, onPush, log: logger, baseline });
      poller.start();
      cleanup.push(() => poller!.stop());
    }

    if (executor) {
      const config = new ConfigSource(path.join(options.home, 'cache'), settings.branch);
      // A push to config builds its worker images here at once, so the next run does not wait for them.
      prebuild = async (commit) => {
        for (const name of await store.listDir(settings.repos.config, commit, 'workers')) {
          try {
            const image = await executor.prepare(await config.worker(configUrl, commit, name));
            logger.info({ worker: name, commit, image }, 'worker image built for the new config commit');
          } catch (err) {
            logger.warn({ worker: name, commit, err: (err as Error).message }, 'worker image did not build; runs using it will fail until config is fixed');
          }
        }
      };
      const worker = new Worker({
        queue,
        executor,
        config,
        concurrency: options.workers,
        outputCap: settings.outputCap,
        log: logger,
        lease: settings,
      });
      await worker.start();
      cleanup.push(() => worker.stop(options.graceMs));
    }
    if (statuses) cleanup.push(() => statuses.idle());
    return { url, app, store, forge, queue, dispatcher, metrics, stop: stopAll, ...(poller ? { poller } : {}), ...(statuses ? { statuses } : {}) };
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
  /** How long running tasks may finish when stopping, before they are requeued (ms). */
  graceMs?: number;
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
    lease: settings,
  });
  await worker.start();
  return {
    stop: async () => {
      await worker.stop(options.graceMs);
      await queue.close();
    },
  };
}
