/**
 * The collector's view of unfinished runs: read from tracking on first use,
 * then kept in step with its own commits. Tracking stays the record: when
 * another writer moves the branch the book is forgotten and read again.
 *
 * Each run keeps its counts as tasks change (completion is a comparison,
 * not a scan), and its tasks' stdout for the reducer only up to the result
 * cap: past it the outputs are let go and the run will fail, naming the cap.
 */
import { readAll, readRunView, readStdout, repoTree } from '../core/run-reader.js';
import type { Basis, GitStore } from '../core/ports.js';
import { runPaths } from '../core/layout.js';
import { isRunFinal, type RunRecord } from '../core/run.js';
import { isFinal, type TaskRecord } from '../core/task.js';

export interface LiveRun {
  run: RunRecord;
  tasks: Map<string, TaskRecord>;
  /** Tasks that are final, and of those, how many failed: kept as tasks change, never recounted. */
  final: number;
  failed: number;
  /** Bytes of stdout its succeeded tasks gave; past the cap they are no longer kept. */
  stdoutBytes: number;
  overCap: boolean;
  /** Tasks waiting on what they need (or for a slot): none in most runs, and then nothing is looked at for them. */
  waiting: number;
  /** Tasks queued, running, or failed with a retry to come: what the run's `parallel` caps. */
  active: number;
  /** For each task, those that need it (read once, for runs with `needs`). */
  dependents?: Map<string, string[]>;
}

export class RunBook {
  private readonly runs = new Map<string, LiveRun>();
  /** The epoch the cached runs were read in: a commit built on them is refused once another writer has moved tracking. */
  basis: Basis | undefined;

  constructor(
    private readonly store: GitStore,
    readonly repo: string,
    private readonly resultCap: number,
  ) {}

  /** A run's records as tracking has them, or undefined when tracking has no such run. */
  async load(runId: string): Promise<LiveRun | undefined> {
    this.basis ??= await this.store.basis(this.repo);
    const cached = this.runs.get(runId);
    if (cached) return cached;
    // At the tip: this process's other writers (the dispatcher) add runs without touching the ones cached here.
    const head = await this.store.head(this.repo);
    if (!head) return undefined;
    const source = repoTree(this.store, this.repo);
    const view = await readRunView(source, head, runId);
    if (!view) return undefined;
    const live: LiveRun = { run: view.run, tasks: new Map(), final: 0, failed: 0, stdoutBytes: 0, overCap: false, waiting: 0, active: 0 };
    // The reducer needs the stdout of every succeeded task; it lives in their files.
    const paths = runPaths(view.run);
    const succeeded = view.tasks.filter((t) => t.state === 'succeeded');
    const outs = isRunFinal(view.run) ? [] : await readAll(succeeded, (t) => readStdout(source, head, paths, t));
    succeeded.forEach((t, i) => (t.stdout = outs[i] ?? ''));
    for (const t of view.tasks) this.setTask(live, t);
    if (!isRunFinal(view.run)) this.runs.set(runId, live);
    return live;
  }

  /** Records a task's new state, keeping the run's counts and its outputs within the cap. */
  setTask(live: LiveRun, next: TaskRecord): void {
    const previous = live.tasks.get(next.id);
    if (previous && isFinal(previous)) {
      live.final--;
      if (previous.state === 'failed' || previous.state === 'skipped') live.failed--;
    }
    if (isFinal(next)) {
      live.final++;
      if (next.state === 'failed' || next.state === 'skipped') live.failed++;
    }
    if (previous?.state === 'waiting') live.waiting--;
    if (next.state === 'waiting') live.waiting++;
    if (previous && isActive(previous)) live.active--;
    if (isActive(next)) live.active++;
    if (next.state === 'succeeded' && next.stdout !== undefined && previous?.stdout !== next.stdout) {
      live.stdoutBytes += Buffer.byteLength(next.stdout);
      if (live.stdoutBytes > this.resultCap && !live.overCap) {
        live.overCap = true;
        for (const t of live.tasks.values()) delete t.stdout;
      }
    }
    if (live.overCap) delete next.stdout;
    live.tasks.set(next.id, next);
  }

  /** A run that is over needs no place in memory. */
  retire(runId: string): void {
    this.runs.delete(runId);
  }

  /** Reads everything again on next use: another writer moved tracking. */
  forget(): void {
    this.runs.clear();
    this.basis = undefined;
  }
}

/** Holding one of its run's `parallel` slots. */
function isActive(task: TaskRecord): boolean {
  return task.state === 'queued' || task.state === 'running' || (task.state === 'failed' && !isFinal(task));
}

export function allTasksFinal(live: LiveRun): boolean {
  return live.tasks.size > 0 && live.final === live.tasks.size;
}

export function progressOf(live: LiveRun): { done: number; failed: number; total: number } {
  return { done: live.final, failed: live.failed, total: live.tasks.size };
}
