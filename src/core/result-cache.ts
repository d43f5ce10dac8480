/**
 * The result cache's index: for each spec key (worker, command, timeout;
 * see cache-key.ts), the results tracking records with their full keys.
 * It holds nothing tracking does not: it is read from tracking on first
 * use (the succeeded tasks of runs that asked for the cache, with the key
 * each recorded) and kept in step as results are committed. Losing it loses
 * nothing; the next start reads it again.
 */
import { listRunIds, readRunRecord, readRunView, type TreeSource } from './run-reader.js';
import { specKey } from './cache-key.js';
import type { RunRecord } from './run.js';
import type { TaskRecord } from './task.js';
import type { Logger } from './logger.js';

/** One earlier result a task may take: equal keys mean the same computation. */
export interface CacheEntry {
  key: string;
  run: string;
  task: string;
  /** A tracking commit at which that task is recorded as succeeded. */
  commit: string;
}

/** Candidates sent with one task: the newest results under its spec key, one per full key. */
export const CANDIDATES_PER_TASK = 8;

export class ResultCache {
  private readonly bySpec = new Map<string, CacheEntry[]>();
  private loading: Promise<void> | undefined;

  constructor(private readonly read?: { source: TreeSource; head: () => Promise<string | undefined> }) {}

  /** Reads tracking once (later calls wait for the same read). */
  ready(): Promise<void> {
    this.loading ??= this.load().catch((err: Error) => {
      this.loading = undefined;
      throw err;
    });
    return this.loading;
  }

  /** Results in the index. */
  get size(): number {
    let n = 0;
    for (const list of this.bySpec.values()) n += list.length;
    return n;
  }

  /** Files a result under its task's spec key; the newest entry for a key replaces the older one. */
  add(spec: string, entry: CacheEntry): void {
    const list = this.bySpec.get(spec) ?? [];
    const same = list.findIndex((e) => e.key === entry.key);
    if (same >= 0) list.splice(same, 1);
    list.unshift(entry);
    if (list.length > CANDIDATES_PER_TASK) list.length = CANDIDATES_PER_TASK;
    this.bySpec.set(spec, list);
  }

  /** A succeeded task of `run`, if it recorded a key. */
  addTask(run: Pick<RunRecord, 'id' | 'worker'>, task: TaskRecord, commit: string): void {
    if (task.state !== 'succeeded' || !task.cacheKey) return;
    // A result taken from the cache points at the run that computed it.
    const origin = task.cachedFrom ?? task.reusedFrom;
    this.add(specKey(run.worker ?? 'default', task.argv, task.timeoutMs), origin ? { key: task.cacheKey, ...origin } : { key: task.cacheKey, run: run.id, task: task.id, commit });
  }

  /** The results filed under a task's spec key, newest first. */
  candidates(worker: string, argv: readonly string[], timeoutMs: number): CacheEntry[] {
    return [...(this.bySpec.get(specKey(worker, argv, timeoutMs)) ?? [])];
  }

  private async load(): Promise<void> {
    if (!this.read) return;
    const head = await this.read.head();
    if (!head) return;
    const { source } = this.read;
    // Oldest runs first, so that the newest result for a key is the one kept in front.
    const runs: RunRecord[] = [];
    for (const id of await listRunIds(source, head)) {
      const run = await readRunRecord(source, head, id);
      if (run?.cache) runs.push(run);
    }
    runs.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
    for (const run of runs) {
      const view = await readRunView(source, head, run.id);
      if (!view) continue;
      for (const task of view.tasks) this.addTask(view.run, task, head);
    }
  }
}

/**
 * The earlier results each task of `run` may take: none for a task that did
 * not ask for the cache, for a run sent with --no-cache, or when the index
 * cannot be read from tracking (then every task runs, and the log says why).
 */
export async function candidatesFor(
  cache: ResultCache | undefined,
  run: Pick<RunRecord, 'cache' | 'noCache' | 'worker'>,
  log: Logger,
): Promise<(task: Pick<TaskRecord, 'cache' | 'argv' | 'timeoutMs'>) => CacheEntry[]> {
  const none = () => [];
  if (!run.cache || run.noCache || !cache) return none;
  try {
    await cache.ready();
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'the result cache could not be read from tracking; its tasks run');
    return none;
  }
  return (task) => (task.cache ? cache.candidates(run.worker ?? 'default', task.argv, task.timeoutMs) : []);
}
