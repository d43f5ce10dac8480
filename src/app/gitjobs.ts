/**
 * The composition root: wires the adapters to the flow stages for
 * `gitjobs up` (built-in Git host, HTTP server, dispatcher, collector,
 * workers) and for `gitjobs worker` (workers only). It decides nothing:
 * every rule lives in the room it belongs to.
 */
import { Scheduler } from '../dispatcher/scheduler.js';
import { systemClock } from '../core/clock.js';
import { ResultCache } from '../core/result-cache.js';
import { repoTree } from '../core/run-reader.js';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { AmqpQueue } from '../adapters/amqp/queue.js';
import { BuiltinForge } from '../adapters/builtin/forge.js';
import type { LocalGitStore } from '../adapters/git/local-store.js';
import type { MirrorGitStore } from '../adapters/git/mirror-store.js';
import { combineObservers, type Forge, type GitStore } from '../core/ports.js';
import type { PushEvent } from '../core/events.js';
import { userQueueNamespace, type Settings } from '../core/settings.js';
import type { RunResult } from '../core/tracking/complete-run.js';
import { TrackingIndex } from '../core/tracking-index.js';
import { Collector } from '../collector/collector.js';
import { Dispatcher, type DispatchOutcome } from '../dispatcher/dispatcher.js';
import { Poller } from '../push/poller.js';
import { registerWebhooks } from '../push/webhooks.js';
import { registerApi } from '../server/api.js';
import { buildServer } from '../server/app.js';
import { registerDashboard } from '../server/dashboard.js';
import { LiveLogs } from '../server/live-logs.js';
import { EventHub } from '../server/live-events.js';
import { registerQueueRoutes } from '../server/queues.js';
import { Access, isLoopback } from '../server/access.js';
import { ConfigSource } from '../worker/config-source.js';
import { prebuildImages } from '../worker/prebuild.js';
import { createExecutor, type ExecutorKind } from './executors.js';
import { startWorker } from './worker-only.js';
import type { WorkerChildStart } from './worker-process.js';
import { Gate } from './gate.js';
import { Metrics } from './metrics.js';
import { openRepositories, type RemoteForgeOptions } from './repositories.js';
import { installationMasker, MaskingGitStore, type SecretMasker } from './secrets.js';
import { StatusReporter } from './status-reporter.js';
import { Teardown } from './teardown.js';

export { createExecutor, type ExecutorKind } from './executors.js';
export { workerOnly, type WorkerProcessOptions } from './worker-only.js';
export { createRemoteForge, type RemoteForgeOptions } from './repositories.js';

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
  /** Runs the workers in a process of their own (`gitjobs up` does), so that spawning never holds up commits. */
  workerProcess?: { logLevel: string };
}

export interface Running {
  url: string;
  app: FastifyInstance;
  store: LocalGitStore | MirrorGitStore;
  /** Serves the repositories (or, with a remote forge, read-only mirrors of them) over smart HTTP. */
  forge: BuiltinForge;
  poller?: Poller;
  statuses?: StatusReporter;
  metrics: Metrics;
  queue: AmqpQueue;
  dispatcher: Dispatcher;
  stop(): Promise<void>;
}

export async function up(options: UpOptions): Promise<Running> {
  const { settings, logger } = options;
  const { tracking, done, todo, config } = settings.repos;
  const queue = await AmqpQueue.connect({ url: options.amqpUrl, queues: settings.queues, log: logger, maxMessageBytes: settings.maxMessageBytes });
  const teardown = new Teardown(logger);
  teardown.add(() => queue.close());
  try {
    const executor = options.workers > 0 ? await createExecutor(options.executor, settings, logger, path.join(options.home, 'builds')) : undefined;
    await executor?.check();
    const repos = await openRepositories({ home: options.home, settings, logger, ...(options.forge ? { forge: options.forge } : {}) });
    teardown.add(() => (repos.mirrors ?? repos.local).close());
    // One rule for pushes and API changes: the token when one is set, else loopback clients only.
    // With a remote forge the built-in host mirrors its (perhaps private) repositories: every request follows it.
    const access = new Access({ token: options.apiToken, names: [options.host, options.publicUrl] });
    if (!options.apiToken && !isLoopbackHost(options.host)) {
      logger.warn(
        { host: options.host },
        `listening on ${options.host} without GITJOBS_API_TOKEN: other hosts can read runs but cannot push or change anything; set GITJOBS_API_TOKEN to let them`,
      );
    }
    const host = new BuiltinForge(repos.local, settings.repos, { pushable: repos.remote ? 'none' : 'todo+config', access, guard: repos.remote ? 'all' : 'push' });
    const forge: Forge = repos.remote ?? host;
    const masker = options.masker ?? installationMasker({ webhookSecret: options.webhookSecret, apiToken: options.apiToken, forgeToken: options.forge?.token, amqpUrl: options.amqpUrl });
    // Everything that writes tracking and done goes through the masking store.
    const store: GitStore = new MaskingGitStore(repos.store, masker, new Set([tracking, done]));
    if (!repos.remote) {
      const created = await host.ensureRepos();
      if (created.length) logger.info({ created }, 'repositories created from repos-template');
    }

    const live = new LiveLogs(masker);
    const events = new EventHub();
    const index = new TrackingIndex(store, tracking);
    const metrics = new Metrics({ index, queueStats: (q) => queue.stats(q) });
    const outputFeed = await queue.subscribe('output', (message) => live.output(message));
    teardown.add(() => outputFeed.cancel());
    const stages = new Gate<{ dispatcher: Dispatcher; collector: Collector }>();
    const onPush = (event: PushEvent) =>
      stages.ready
        .then(({ dispatcher }) => dispatcher.handlePush(event))
        .then(
          (outcomes) => options.onDispatched?.(outcomes),
          (err: Error) => logger.error({ err: err.message, repo: event.repo, after: event.after, source: event.source }, 'dispatch failed'),
        );
    const cancel = async (runId: string, reason: string) => (await stages.ready).collector.cancel(runId, reason);
    const app = await buildServer({
      logger,
      plugins: [
        (a) => host.register(a),
        (a) => registerWebhooks(a, { secret: options.webhookSecret, filter: settings, onPush, onOutcome: (source, outcome) => metrics.webhooks.inc({ source, outcome }) }),
        (a) => live.register(a, store, tracking),
        (a) => events.register(a),
        (a) => registerDashboard(a),
        (a) => metrics.register(a),
        (a) =>
          registerApi(a, {
            store,
            trackingRepo: tracking,
            doneRepo: done,
            index,
            cancel,
            rerun: async (runId, options) => (await stages.ready).dispatcher.rerun(runId, options),
            access,
            commitUrl: (sha) => forge.commitUrl(tracking, sha),
          }),
        (a) => registerQueueRoutes(a, { service: queue.service, namespace: userQueueNamespace(settings.queues), access }),
      ],
    });
    await app.listen({ host: options.host, port: options.port });
    teardown.add(() => app.close());
    // Open event streams would hold the server's close: end them first.
    teardown.add(async () => {
      live.close();
      events.close();
    });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : options.port;
    const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
    host.setBaseUrl(options.publicUrl ?? url);
    const configUrl = host.cloneUrl(config);

    const statuses = repos.remote ? new StatusReporter(repos.remote, todo, options.publicUrl ?? url, logger) : undefined;
    const observer = combineObservers(statuses, live, events, metrics);
    // The result cache's index: read from tracking when a task first asks for it, then kept by the collector.
    const resultCache = new ResultCache({ source: repoTree(store, settings.repos.tracking), head: () => store.head(settings.repos.tracking) });
    const collector = new Collector({ store, queue, settings, configUrl, log: logger, observer, resultCache, ...(options.onRunFinished ? { onRunFinished: options.onRunFinished } : {}) });
    await collector.start();
    metrics.leasesHeld = () => collector.leasesHeld;
    teardown.add(() => collector.stop());
    // Git is the system of record: whatever it says is unfinished goes back on the queues.
    await collector.recover();
    // And again whenever TODO is found gone while running (deleted under us): what it held is sent again.
    queue.onLost((lost) => {
      if (lost !== 'todo') return;
      logger.warn({ queue: settings.queues.todo }, 'the TODO queue was deleted while running; recovering its tasks from tracking');
      void collector.recover().catch((err: Error) => logger.error({ err: err.message }, 'recovery after a lost queue failed'));
    });

    const sources = new ConfigSource(path.join(options.home, 'cache'), settings.branch, options.apiToken);
    const prebuild = executor && ((commit: string) => void prebuildImages({ executor, sources, store, configRepo: config, configUrl, log: logger }, commit));
    let scheduler: Scheduler | undefined;
    const dispatcher = new Dispatcher({ store, queue, settings, configUrl, log: logger, cancel, observer, resultCache, onSchedule: () => scheduler?.poke(), ...(prebuild ? { onConfig: prebuild } : {}) });
    stages.openWith({ dispatcher, collector });
    host.onPush(onPush);
    // Scheduled project files run at their ticks; one missed while down runs once now.
    scheduler = new Scheduler({ store, tracking: settings.repos.tracking, clock: systemClock, log: logger, run: (schedule, tick) => dispatcher.runScheduled(schedule, tick) });
    await scheduler.start();
    teardown.add(() => scheduler!.stop());

    let poller: Poller | undefined;
    if (options.pollMs && repos.mirrors) {
      poller = new Poller({ store: repos.mirrors, repos: [todo, config], branch: settings.branch, intervalMs: options.pollMs, onPush, log: logger, baseline: repos.baseline });
      poller.start();
      teardown.add(() => poller!.stop());
    }
    if (executor && options.workerProcess) {
      const child = await startWorkerProcess({
        type: 'start',
        options: { workers: options.workers, executor: options.executor, amqpUrl: options.amqpUrl, settings, cacheDir: path.join(options.home, 'cache'), quiet: true, ...(options.apiToken ? { apiToken: options.apiToken } : {}), ...(options.graceMs !== undefined ? { graceMs: options.graceMs } : {}) },
        logLevel: options.workerProcess.logLevel,
        secrets: masker.secrets,
      });
      teardown.add(() => child.stop(options.graceMs));
    } else if (executor) {
      const worker = await startWorker({ queue, executor, sources, workers: options.workers, settings, logger });
      teardown.add(() => worker.stop(options.graceMs));
    }
    if (statuses) teardown.add(() => statuses.idle());
    return { url, app, store: repos.store, forge: host, queue, dispatcher, metrics, stop: () => teardown.run(), ...(poller ? { poller } : {}), ...(statuses ? { statuses } : {}) };
  } catch (err) {
    await teardown.run();
    throw err;
  }
}

/** Starts `up`'s workers in a child process (worker-process.ts); resolves once they take tasks. */
function startWorkerProcess(start: WorkerChildStart): Promise<{ stop(graceMs?: number): Promise<void>; pid: number }> {
  const child = fork(fileURLToPath(new URL('./worker-process.js', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const gone = () => reject(new Error('the worker process exited before it took tasks'));
    child.once('exit', gone);
    child.once('message', (m: { type: string; error?: string }) => {
      if (m.type !== 'ready') {
        child.kill('SIGKILL');
        return reject(new Error(`the worker process could not start: ${m.error}`));
      }
      child.off('exit', gone);
      resolve({
        pid: child.pid!,
        stop: async (graceMs) => {
          if (child.exitCode === null && child.connected) child.send({ type: 'stop', graceMs });
          await exited;
        },
      });
    });
    child.send(start);
  });
}

/** Whether `--host` is a loopback address (or a name only this machine resolves so). */
function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || isLoopback(h);
}
