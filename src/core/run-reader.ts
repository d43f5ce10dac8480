/**
 * Reads runs and tasks out of a tracking tree at one commit, from any
 * source that can read files (the local store, a fetched mirror, a clone),
 * in either layout (layout.ts).
 */
import { candidateRunFiles, LEGACY_RUNS_DIR, runPaths, RUNS_DIR, type RunPaths } from './layout.js';
import { progress, type RunRecord } from './run.js';
import { isRunFinal } from './run.js';
import type { TaskRecord } from './task.js';
import type { GitStore } from './ports.js';
import { parseTaskList, type TaskSpec } from './tracking/records.js';

export interface TreeSource {
  readFile(commit: string, path: string): Promise<string | undefined>;
  listDir(commit: string, path: string): Promise<string[]>;
  /** Many files at once, where the source can do better than one by one (GitStore.readFiles). */
  readFiles?(commit: string, paths: readonly string[]): Promise<(string | undefined)[]>;
}

/** One repository of a GitStore, as a tree source. */
export function repoTree(store: Pick<GitStore, 'readFile' | 'listDir' | 'readFiles'>, repo: string): TreeSource {
  const source: TreeSource = { readFile: (commit, path) => store.readFile(repo, commit, path), listDir: (commit, path) => store.listDir(repo, commit, path) };
  if (store.readFiles) source.readFiles = (commit, paths) => store.readFiles!(repo, commit, paths);
  return source;
}

/** Many files of one commit, in order: at once where the source can, else READ_AHEAD at a time. */
export function readFilesOf(source: TreeSource, commit: string, paths: readonly string[]): Promise<(string | undefined)[]> {
  return source.readFiles ? source.readFiles(commit, paths) : readAll(paths, (p) => source.readFile(commit, p));
}

export interface RunView {
  run: RunRecord;
  tasks: TaskRecord[];
  progress: { done: number; failed: number; total: number };
}

/** Reads this many files at once: the store pipelines them. */
const READ_AHEAD = 1024;

/** Reads many files at once, in order. */
export async function readAll<T>(items: readonly T[], read: (item: T) => Promise<string | undefined>): Promise<(string | undefined)[]> {
  const out: (string | undefined)[] = [];
  for (let i = 0; i < items.length; i += READ_AHEAD) out.push(...(await Promise.all(items.slice(i, i + READ_AHEAD).map(read))));
  return out;
}

/** A run's own record (layout 2: without its task list) and where its files are. */
export async function locateRun(source: TreeSource, commit: string, runId: string): Promise<{ run: RunRecord; paths: RunPaths } | undefined> {
  for (const candidate of candidateRunFiles(runId)) {
    const text = await source.readFile(commit, candidate.runFile);
    if (text === undefined) continue;
    const run = JSON.parse(text) as RunRecord;
    run.layout = candidate.layout;
    run.tasks ??= [];
    return { run, paths: runPaths(run) };
  }
  return undefined;
}

/** A run's own record, without its tasks. */
export async function readRunRecord(source: TreeSource, commit: string, runId: string): Promise<RunRecord | undefined> {
  return (await locateRun(source, commit, runId))?.run;
}

/** A run with every task, in result order. */
export async function readRunView(source: TreeSource, commit: string, runId: string): Promise<RunView | undefined> {
  const opened = await openRunView(source, commit, runId);
  if (!opened) return undefined;
  const tasks: TaskRecord[] = [];
  for (const batch of opened.batches()) for (const t of batch) tasks.push(t);
  return { run: opened.run, tasks, progress: progress(tasks) };
}

/** Task records made at a time by OpenedRunView.batches. */
export const RECORD_BATCH = 1024;

export interface OpenedRunView {
  run: RunRecord;
  /**
   * The run's task records in its order, RECORD_BATCH at a time: what
   * readRunView puts together, for an answer that need not hold every one
   * of them at once (a 10,000-task run's records are tens of MB of objects;
   * the files they are made from, a tenth of that, are read at the start).
   */
  batches(): Generator<TaskRecord[]>;
}

/**
 * A layout-2 task's record: its state file's fields, then its run and what
 * its line in tasks.jsonl says that the state file does not (the state
 * file wins where both say). Made by adding to the parsed state rather than
 * spreading both into a new object: that kept V8's compact form for the
 * object, where the spread of some twenty fields did not (about 5 KB an
 * object: 48 MB more for a 10,000-task run's records, measured).
 */
function taskRecord(spec: TaskSpec, runId: string, state: string): TaskRecord {
  const record = JSON.parse(state) as Record<string, unknown>;
  if (!('run' in record)) record.run = runId;
  for (const key in spec) if (!(key in record)) record[key] = spec[key as keyof TaskSpec];
  return record as unknown as TaskRecord;
}

/** A run's record and its tasks' files, read; their records made as they are asked for. */
export async function openRunView(source: TreeSource, commit: string, runId: string): Promise<OpenedRunView | undefined> {
  const located = await locateRun(source, commit, runId);
  if (!located) return undefined;
  const { run, paths } = located;
  // The task files' texts, in the run's order, and how the record of the j-th is made from its text.
  let texts: (string | undefined)[];
  let record: (text: string, j: number) => TaskRecord;
  if (paths.layout === 1) {
    texts = await readFilesOf(source, commit, run.tasks.map((id) => paths.taskFile(id)));
    record = (text) => JSON.parse(text) as TaskRecord;
  } else {
    const published = await source.readFile(commit, paths.publishedFile!);
    if (published !== undefined) run.publishedAt = (JSON.parse(published) as { at: string }).at;
    const list = await source.readFile(commit, paths.taskList!);
    const specs = list === undefined ? [] : parseTaskList(list);
    run.tasks = specs.map((s) => s.id);
    texts = await readFilesOf(source, commit, specs.map((s) => paths.taskFile(s.id)));
    record = (text, j) => taskRecord(specs[j]!, run.id, text);
  }
  return {
    run,
    *batches() {
      for (let i = 0; i < texts.length; i += RECORD_BATCH) {
        const batch: TaskRecord[] = [];
        for (let j = i; j < Math.min(texts.length, i + RECORD_BATCH); j++) {
          const text = texts[j];
          if (text !== undefined) batch.push(record(text, j));
        }
        yield batch;
      }
    },
  };
}

/** One task's record, with its run's, without reading the run's other tasks' files. */
export async function readTask(source: TreeSource, commit: string, runId: string, taskId: string): Promise<{ run: RunRecord; paths: RunPaths; task: TaskRecord } | undefined> {
  const located = await locateRun(source, commit, runId);
  if (!located) return undefined;
  const { run, paths } = located;
  const state = await source.readFile(commit, paths.taskFile(taskId));
  if (state === undefined) return undefined;
  if (paths.layout === 1) return { run, paths, task: JSON.parse(state) as TaskRecord };
  const list = await source.readFile(commit, paths.taskList!);
  const spec = list === undefined ? undefined : parseTaskList(list).find((t) => t.id === taskId);
  if (!spec) return undefined;
  return { run, paths, task: { ...spec, run: run.id, ...(JSON.parse(state) as Omit<TaskRecord, 'argv' | 'timeoutMs' | 'maxAttempts' | 'run'>) } };
}

/** A finished task's whole stdout, for the reducer: in its record or its own file (layout 1), its own file or its log (layout 2). */
export async function readStdout(source: TreeSource, commit: string, paths: RunPaths, task: TaskRecord): Promise<string> {
  if (paths.layout === 1 && !task.stdoutFile) return task.stdout ?? '';
  return (await source.readFile(commit, task.stdoutFile ?? paths.logFile(task.id))) ?? '';
}

/** A succeeded task's log and stdout, as a run that reuses its result copies them (one read when they are the same file). */
export async function readTaskResult(source: TreeSource, commit: string, paths: RunPaths, task: TaskRecord): Promise<{ log: string; stdout: string }> {
  const log = (await source.readFile(commit, paths.logFile(task.id))) ?? '';
  // Layout 2 keeps stdout in the log unless stderr was mixed in (then it has its own file).
  const stdout = paths.layout === 2 && !task.stdoutFile ? log : await readStdout(source, commit, paths, task);
  return { log, stdout };
}

/** Every run id in tracking, in both layouts. */
export async function listRunIds(source: TreeSource, commit: string): Promise<string[]> {
  const ids = [...(await source.listDir(commit, LEGACY_RUNS_DIR))];
  for (const a of await source.listDir(commit, RUNS_DIR)) {
    for (const b of await source.listDir(commit, `${RUNS_DIR}/${a}`)) ids.push(...(await source.listDir(commit, `${RUNS_DIR}/${a}/${b}`)));
  }
  return ids;
}

/** The runs that are not over yet (no result, not rejected). */
export async function unfinishedRuns(source: TreeSource, commit: string): Promise<RunRecord[]> {
  const ids = await listRunIds(source, commit);
  const out: RunRecord[] = [];
  for (const id of ids) {
    const run = await readRunRecord(source, commit, id);
    if (run && !isRunFinal(run)) out.push(run);
  }
  return out;
}

/** A run's result text in the done repository, in either layout. */
export async function readResultText(source: TreeSource, commit: string, runId: string): Promise<string | undefined> {
  for (const layout of [2, 1] as const) {
    const text = await source.readFile(commit, runPaths({ id: runId, layout }).resultText);
    if (text !== undefined) return text;
  }
  return undefined;
}

/** A run's result.json in the done repository, in either layout. */
export async function readResultJson(source: TreeSource, commit: string, runId: string): Promise<unknown> {
  for (const layout of [2, 1] as const) {
    const text = await source.readFile(commit, runPaths({ id: runId, layout }).resultJson);
    if (text !== undefined) return JSON.parse(text);
  }
  return undefined;
}
