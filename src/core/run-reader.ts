/**
 * Reads runs and tasks out of a tracking tree at one commit, from any
 * source that can read files: the local store, a fetched mirror.
 */
import { layout } from './layout.js';
import { isRunFinal, progress, type RunRecord } from './run.js';
import type { TaskRecord } from './task.js';
import type { GitStore } from './ports.js';

export interface TreeSource {
  readFile(commit: string, path: string): Promise<string | undefined>;
  listDir(commit: string, path: string): Promise<string[]>;
}

/** One repository of a GitStore, as a tree source. */
export function repoTree(store: Pick<GitStore, 'readFile' | 'listDir'>, repo: string): TreeSource {
  return { readFile: (commit, path) => store.readFile(repo, commit, path), listDir: (commit, path) => store.listDir(repo, commit, path) };
}

export interface RunView {
  run: RunRecord;
  tasks: TaskRecord[];
  progress: { done: number; failed: number; total: number };
}

/** A run's own record, without its tasks. */
export async function readRunRecord(source: TreeSource, commit: string, runId: string): Promise<RunRecord | undefined> {
  const text = await source.readFile(commit, layout.runFile(runId));
  return text === undefined ? undefined : (JSON.parse(text) as RunRecord);
}

/** The runs that are not over yet (no result, not rejected). */
export async function unfinishedRuns(source: TreeSource, commit: string): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  for (const runId of await listRunIds(source, commit)) {
    const run = await readRunRecord(source, commit, runId);
    if (run && !isRunFinal(run)) out.push(run);
  }
  return out;
}

export async function readRunView(source: TreeSource, commit: string, runId: string): Promise<RunView | undefined> {
  const run = await readRunRecord(source, commit, runId);
  if (!run) return undefined;
  const tasks: TaskRecord[] = [];
  for (const id of run.tasks) {
    const t = await source.readFile(commit, layout.taskFile(runId, id));
    if (t !== undefined) tasks.push(JSON.parse(t) as TaskRecord);
  }
  return { run, tasks, progress: progress(tasks) };
}

export async function listRunIds(source: TreeSource, commit: string): Promise<string[]> {
  return source.listDir(commit, 'projects');
}
