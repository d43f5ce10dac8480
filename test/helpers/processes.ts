/**
 * gitjobs as separate processes (`up`, `worker`), so that tests can kill
 * them the way machines die, and read what they wrote from their home.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { LocalGitStore } from '../../src/adapters/git/local-store.js';
import { readResultText, readRunView, repoTree } from '../../src/core/run-reader.js';
import type { RunRecord } from '../../src/core/run.js';
import type { TaskRecord } from '../../src/core/task.js';

export const CLI = path.resolve('dist/cli/main.js');

export interface Proc {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

export function gitjobs(args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<Proc & { match: RegExpExecArray }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, GITJOBS_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = ready.exec(out);
      if (m) resolve({ child, output: () => out, exited, match: m });
    };
    child.stdout!.on('data', (d) => {
      out += d;
      check();
    });
    child.stderr!.on('data', (d) => (out += d));
    void exited.then((code) => reject(new Error(`gitjobs ${args[0]} exited ${code} before it was ready:\n${out}`)));
  });
}

export async function startUp(home: string, prefix: string, workers: number, env: NodeJS.ProcessEnv = {}): Promise<Proc & { url: string }> {
  const p = await gitjobs(['up', '--home', home, '--port', '0', '--workers', String(workers)], { GITJOBS_QUEUE_PREFIX: prefix, ...env }, /gitjobs is up at (http:\/\/\S+)[\s\S]*Ctrl-C stops/);
  return { ...p, url: p.match[1]! };
}

export async function startWorker(prefix: string, cache: string, workers = 2): Promise<Proc> {
  return gitjobs(['worker', '--workers', String(workers), '--cache', cache], { GITJOBS_QUEUE_PREFIX: prefix }, /taking tasks from/);
}

/** One store per `up` home, read as git reads it. */
const stores = new Map<string, LocalGitStore>();
function storeOf(home: string): LocalGitStore {
  let s = stores.get(home);
  if (!s) stores.set(home, (s = new LocalGitStore(path.join(home, 'repos'))));
  return s;
}

/** Reads a run straight from the tracking repository in an `up` home. */
export async function readRun(home: string, runId: string): Promise<{ run: RunRecord; tasks: TaskRecord[]; log: string[] } | undefined> {
  const store = storeOf(home);
  const head = await store.head('tache_suivi');
  if (!head) return undefined;
  const view = await readRunView(repoTree(store, 'tache_suivi'), head, runId);
  if (!view) return undefined;
  const { run, tasks } = view;
  const log = (await store.log('tache_suivi')).map((c) => c.message.split('\n')[0]!).filter((s) => s.startsWith(runId)).reverse();
  return { run, tasks, log };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function resultText(home: string, runId: string): Promise<string | undefined> {
  const store = storeOf(home);
  const head = await store.head('tache_termine');
  return head ? readResultText(repoTree(store, 'tache_termine'), head, runId) : undefined;
}

/** Waits until the run in an `up` home has its result, and returns it as tracking has it. */
export function finishedRun(home: string, runId: string, timeoutMs?: number) {
  return waitFor(
    `run ${runId} to finish`,
    async () => {
      const v = await readRun(home, runId);
      return v?.run.doneCommit ? v : undefined;
    },
    timeoutMs,
  );
}
