/**
 * A real gitjobs stack for a test: built-in Git host on a free loopback
 * port, real RabbitMQ (queues with a unique prefix), real Docker, and the
 * stock `git` CLI as the client.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AmqpQueue } from '../../src/adapters/amqp/queue.js';
import { up, type Running, type ExecutorKind } from '../../src/app/gitjobs.js';
import { locateRun, readResultJson, readResultText, readRunView, readStdout, repoTree } from '../../src/core/run-reader.js';
import { runPaths } from '../../src/core/layout.js';
import { DEFAULT_SETTINGS, prefixedQueues, type Settings } from '../../src/core/settings.js';
import type { RunRecord } from '../../src/core/run.js';
import type { TaskRecord } from '../../src/core/task.js';
import type { RunResult } from '../../src/core/tracking/complete-run.js';
import { installationMasker } from '../../src/app/secrets.js';
import { createLogger } from '../../src/app/logger.js';
import { Writable } from 'node:stream';

export const AMQP_URL = process.env.GITJOBS_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export function tmpdir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `gitjobs-test-${prefix}-`));
}

/**
 * Removes a test's folder. A git process may still be finishing in it (a
 * repack of a store that was not closed, the git child of a server that was
 * killed): a file that appears while the tree is removed is retried, not an
 * error.
 */
export function rmTree(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}

const GIT_ENV = { ...process.env, GIT_AUTHOR_NAME: 'Test Client', GIT_AUTHOR_EMAIL: 'client@example.test', GIT_COMMITTER_NAME: 'Test Client', GIT_COMMITTER_EMAIL: 'client@example.test', GIT_TERMINAL_PROMPT: '0' };

/** The git CLI on a local folder. Never for talking to the in-process server: a sync call would block it. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', env: GIT_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The git CLI, without blocking the event loop (clone, fetch, push to the server in this process). */
export async function gitAsync(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('git', args, { cwd, encoding: 'utf8', env: GIT_ENV });
  return stdout;
}

export interface Stack {
  running: Running;
  settings: Settings;
  home: string;
  /** Clones a repository with the git CLI into a fresh folder. */
  clone(repo: string): Promise<string>;
  /** Commits these files to the todo repository with the git CLI and pushes; returns the pushed commit. */
  push(files: Record<string, string>, message?: string, options?: { token?: string }): Promise<string>;
  /** What gitjobs logged so far. */
  logs(): string;
  waitForRun(runId: string, timeoutMs?: number): Promise<{ run: RunRecord; tasks: TaskRecord[] }>;
  readRun(runId: string): Promise<{ run: RunRecord; tasks: TaskRecord[] } | undefined>;
  result(runId: string): Promise<{ json: RunResult; text: string }>;
  /** A task's whole output, as its log file in tracking has it. */
  log(runId: string, task: string): Promise<string | undefined>;
  /** A task's stdout alone, as tracking keeps it for the reducer. */
  stdout(runId: string, task: string): Promise<string | undefined>;
  stop(): Promise<void>;
}

export async function startStack(options: { workers?: number; executor?: ExecutorKind; settings?: Partial<Settings>; apiToken?: string; webhookSecret?: string; host?: string } = {}): Promise<Stack> {
  const home = tmpdir('home');
  const settings: Settings = { ...DEFAULT_SETTINGS, queues: prefixedQueues(`test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`), ...options.settings };
  // Logs are kept so that tests can read them: written by gitjobs' own logger, masked by its own list of secrets, as `up` does.
  let logText = '';
  const capture = new Writable({
    write(chunk: Buffer, _enc, done) {
      logText += chunk.toString('utf8');
      done();
    },
  });
  const logger = createLogger(process.env.GITJOBS_TEST_LOG ?? 'info', installationMasker({ apiToken: options.apiToken, webhookSecret: options.webhookSecret, amqpUrl: AMQP_URL }), capture);
  const running = await up({
    home,
    host: options.host ?? '127.0.0.1',
    port: 0,
    workers: options.workers ?? 2,
    executor: options.executor ?? ((process.env.GITJOBS_TEST_EXECUTOR as ExecutorKind | undefined) ?? 'docker'),
    amqpUrl: AMQP_URL,
    settings,
    logger,
    ...(options.apiToken ? { apiToken: options.apiToken } : {}),
    ...(options.webhookSecret ? { webhookSecret: options.webhookSecret } : {}),
  });
  const clones: string[] = [];
  const tracking = settings.repos.tracking;

  const readRun = async (runId: string) => {
    const head = await running.store.head(tracking);
    return head ? readRunView(repoTree(running.store, tracking), head, runId) : undefined;
  };

  const stack: Stack = {
    running,
    settings,
    home,
    async clone(repo) {
      const dir = tmpdir('clone');
      clones.push(dir);
      await gitAsync(dir, 'clone', '-q', running.forge.cloneUrl(repo), '.');
      return dir;
    },
    logs: () => logText,
    async push(files, message = 'Add projects', pushOptions = {}) {
      const dir = await stack.clone(settings.repos.todo);
      if (pushOptions.token) git(dir, 'remote', 'set-url', '--push', 'origin', running.forge.cloneUrl(settings.repos.todo).replace('http://', `http://gitjobs:${pushOptions.token}@`));
      for (const [file, content] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        fs.writeFileSync(path.join(dir, file), content);
      }
      git(dir, 'add', '-A');
      git(dir, 'commit', '-q', '-m', message);
      await gitAsync(dir, 'push', '-q', 'origin', 'HEAD:main');
      return git(dir, 'rev-parse', 'HEAD').trim();
    },
    readRun,
    async waitForRun(runId, timeoutMs = 90_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const view = await readRun(runId);
        if (view && (view.run.state === 'rejected' || view.run.doneCommit)) return view;
        if (Date.now() > deadline) throw new Error(`run ${runId} not final after ${timeoutMs} ms: ${JSON.stringify(view?.run.state)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async log(runId, task) {
      const head = (await running.store.head(tracking))!;
      const located = await locateRun(repoTree(running.store, tracking), head, runId);
      return located && running.store.readFile(tracking, head, located.paths.logFile(task));
    },
    async stdout(runId, task) {
      const head = (await running.store.head(tracking))!;
      const view = await readRunView(repoTree(running.store, tracking), head, runId);
      const t = view?.tasks.find((x) => x.id === task);
      return view && t && readStdout(repoTree(running.store, tracking), head, runPaths(view.run), t);
    },
    async result(runId) {
      const done = settings.repos.done;
      const head = (await running.store.head(done))!;
      const source = repoTree(running.store, done);
      const json = (await readResultJson(source, head, runId)) as RunResult;
      const text = (await readResultText(source, head, runId))!;
      return { json, text };
    },
    async stop() {
      // Stopped first, so that nothing publishes to queues being deleted; then its queues go.
      await running.stop();
      const q = await AmqpQueue.connect({ url: AMQP_URL, queues: settings.queues });
      await q.deleteQueues();
      await q.close();
      for (const d of [home, ...clones]) rmTree(d);
    },
  };
  return stack;
}
