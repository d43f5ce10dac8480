/**
 * The whole flow on in-memory doubles of every port: dispatcher, worker and
 * collector as `gitjobs up` wires them, with RabbitMQ, Docker and Git
 * replaced by MemoryQueue, MemoryExecutor and MemoryGitStore, and time by a
 * ManualClock. No service is needed; nothing waits on real time.
 */
import { runIdFor } from '../../src/core/ids.js';
import { ManualClock, settle } from '../../src/adapters/memory/clock.js';
import { MemoryExecutor, type Program } from '../../src/adapters/memory/executor.js';
import { MemoryGitStore } from '../../src/adapters/memory/git-store.js';
import { MemoryQueue } from '../../src/adapters/memory/queue.js';
import { Collector } from '../../src/collector/collector.js';
import { ZERO_SHA } from '../../src/core/events.js';
import type { Logger } from '../../src/core/logger.js';
import type { RunObserver } from '../../src/core/ports.js';
import type { TodoMessage } from '../../src/core/channels.js';
import { readResultJson, readRunView, repoTree } from '../../src/core/run-reader.js';
import { DEFAULT_SETTINGS, type Settings } from '../../src/core/settings.js';
import type { RunResult } from '../../src/core/tracking/complete-run.js';
import { Dispatcher } from '../../src/dispatcher/dispatcher.js';
import { Worker } from '../../src/worker/worker.js';
import { ResultCache } from '../../src/core/result-cache.js';
import { createHash } from 'node:crypto';
import type { WorkerSources } from '../../src/worker/attempt.js';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  [key: string]: unknown;
}

/** A Logger that keeps its lines, for tests to read. */
export function memoryLogger(lines: LogLine[] = [], bindings: Record<string, unknown> = {}): Logger & { lines: LogLine[] } {
  const at = (level: LogLine['level']) => (obj: object, msg?: string) => void lines.push({ ...bindings, ...obj, level, msg: msg ?? '' });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (b) => memoryLogger(lines, { ...bindings, ...b }) };
}

export const CONFIG_URL = 'memory://config.git';

export const sources: WorkerSources = { worker: async (_url, commit, name) => ({ name, commit, dir: `/config/workers/${name}` }) };

/** Sources that read the worker's Dockerfile from the config repository and stand its hash in for the folder's tree id. */
export function sourcesFrom(store: MemoryGitStore, configRepo: string): WorkerSources {
  return {
    worker: async (_url, commit, name) => {
      // A message of a made-up config commit (tests that drive a worker alone) has no tree id.
      const dockerfile = await store.readFile(configRepo, commit, `workers/${name}/Dockerfile`).catch(() => undefined);
      const tree = dockerfile === undefined ? undefined : createHash('sha1').update(`${name}\0${dockerfile}`).digest('hex');
      return { name, commit, dir: `/config/workers/${name}`, ...(tree ? { tree } : {}) };
    },
  };
}

export interface Harness {
  clock: ManualClock;
  queue: MemoryQueue;
  store: MemoryGitStore;
  executor: MemoryExecutor;
  settings: Settings;
  log: ReturnType<typeof memoryLogger>;
  dispatcher: Dispatcher;
  collector: Collector;
  workers: Worker[];
  finished: RunResult[];
  configs: string[];
  resultCache: ResultCache;
  /** Commits these files to the todo repository and hands the push to the dispatcher; returns the todo commit. */
  push(files: Record<string, string | null>, message?: string): Promise<string>;
  startWorker(concurrency?: number, host?: string): Promise<Worker>;
  /** Lets everything that can happen without time passing happen. */
  idle(): Promise<void>;
  /** The run as tracking has it at its tip. */
  run(runId: string): ReturnType<typeof readRunView>;
  subjects(runId: string): Promise<string[]>;
  result(runId: string): Promise<RunResult | undefined>;
  stop(): Promise<void>;
}

export async function harness(options: { workers?: number; concurrency?: number; programs?: Record<string, Program>; broken?: string[]; settings?: Partial<Settings>; collector?: boolean; observer?: RunObserver } = {}): Promise<Harness> {
  const clock = new ManualClock();
  const queue = new MemoryQueue({ maxMessageBytes: options.settings?.maxMessageBytes ?? DEFAULT_SETTINGS.maxMessageBytes });
  const store = new MemoryGitStore();
  const settings: Settings = { ...DEFAULT_SETTINGS, ...options.settings };
  const { todo, tracking, done, config } = settings.repos;
  await store.commit(todo, { changes: [{ path: 'README.md', content: '# todo\n' }], message: 'Initial todo repository\n' });
  await store.commit(tracking, { changes: [{ path: 'README.md', content: '# tracking\n' }], message: 'Initial tracking repository\n' });
  await store.commit(done, { changes: [{ path: 'README.md', content: '# done\n' }], message: 'Initial done repository\n' });
  await store.commit(config, { changes: [{ path: 'workers/default/Dockerfile', content: 'FROM base\n' }], message: 'Initial config repository\n' });
  const executor = new MemoryExecutor({ clock, ...(options.programs ? { programs: options.programs } : {}), ...(options.broken ? { broken: options.broken } : {}) });
  const log = memoryLogger();
  const finished: RunResult[] = [];
  const configs: string[] = [];
  const resultCache = new ResultCache({ source: repoTree(store, tracking), head: () => store.head(tracking) });
  const collector = new Collector({ store, queue, settings, configUrl: CONFIG_URL, log, clock, resultCache, onRunFinished: (r) => finished.push(r), ...(options.observer ? { observer: options.observer } : {}) });
  if (options.collector !== false) await collector.start();
  const dispatcher = new Dispatcher({ store, queue, settings, configUrl: CONFIG_URL, log, clock, resultCache, cancel: (run, reason) => collector.cancel(run, reason), onConfig: (c) => configs.push(c) });
  const workerSources = sourcesFrom(store, config);
  const workers: Worker[] = [];
  const h: Harness = {
    clock,
    queue,
    store,
    executor,
    settings,
    log,
    dispatcher,
    collector,
    workers,
    finished,
    configs,
    resultCache,
    async push(files, message = 'Push\n') {
      const before = (await store.head(todo)) ?? ZERO_SHA;
      const after = await store.commit(todo, { changes: Object.entries(files).map(([path, content]) => ({ path, content })), message });
      await dispatcher.handlePush({ repo: todo, ref: `refs/heads/${settings.branch}`, before, after, source: 'test' });
      return after;
    },
    async startWorker(concurrency = options.concurrency ?? 2, host = `h${workers.length + 1}`) {
      const worker = new Worker({ queue, executor, config: workerSources, concurrency, readAhead: settings.readAhead, outputCap: settings.outputCap, log, clock, host, lease: settings });
      await worker.start();
      workers.push(worker);
      return worker;
    },
    idle: () => settle(20),
    async run(runId) {
      const head = await store.head(tracking);
      return head ? readRunView(repoTree(store, tracking), head, runId) : undefined;
    },
    async subjects(runId) {
      return (await store.subjects(tracking)).filter((s) => s.startsWith(runId));
    },
    async result(runId) {
      const head = (await store.head(done))!;
      return (await readResultJson(repoTree(store, done), head, runId)) as RunResult | undefined;
    },
    async stop() {
      // Running attempts are killed at once: the grace period is on the manual clock.
      const stopping = Promise.all(workers.map((w) => w.stop(0)));
      await clock.advance(1);
      await stopping;
      await collector.stop();
    },
  };
  for (let i = 0; i < (options.workers ?? 1); i++) await h.startWorker();
  return h;
}

/** Waits (letting the event loop turn, and time pass in `stepMs` steps when asked) until `check` holds. */
export async function until<T>(h: Harness, what: string, check: () => Promise<T | undefined | false> | T | undefined | false, options: { advanceMs?: number; steps?: number } = {}): Promise<T> {
  for (let i = 0; i < (options.steps ?? 200); i++) {
    const v = await check();
    if (v) return v;
    if (options.advanceMs) await h.clock.advance(options.advanceMs);
    else await h.idle();
  }
  throw new Error(`never happened: ${what}`);
}

/** Waits, letting time pass, until a run has its result; then its view. */
export function finishedRun(h: Harness, runId: string): Promise<NonNullable<Awaited<ReturnType<Harness['run']>>>> {
  return until(h, `${runId} finished`, async () => ((await h.run(runId))?.run.doneCommit ? h.run(runId) : undefined), { advanceMs: 100, steps: 2000 });
}

/** Pushes one project file, `projects/<name>.json` (with this commit message, if given), and waits for its run to finish: its id. */
export async function pushedRun(h: Harness, name: string, project: object, message?: string): Promise<string> {
  const file = `projects/${name}.json`;
  const id = runIdFor(file, await h.push({ [file]: JSON.stringify(project) }, message));
  await finishedRun(h, id);
  return id;
}

/** A TODO message of run r-1234567, as the dispatcher would send it, for tests that drive a worker alone. */
export function todo(task: string, argv: string[], extra: Partial<TodoMessage> = {}): TodoMessage {
  return {
    v: 1,
    run: 'r-1234567',
    task,
    attempt: 1,
    worker: 'default',
    argv,
    timeoutMs: 60_000,
    limits: { memoryBytes: 1 << 29, nanoCpus: 1e9, pids: 256 },
    config: { url: CONFIG_URL, commit: 'c'.repeat(40) },
    todoCommit: 'a'.repeat(40),
    ...extra,
  };
}
