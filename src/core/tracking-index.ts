/**
 * What the dashboard, the API and the metrics read from tracking, kept up to
 * date incrementally instead of re-read on every request. Git's tree ids do
 * the work: a folder whose id did not change is not read again, down to the
 * fan-out folders of one run's tasks, so that a look at a 10,000-task run
 * reads only the task files that changed since the last look.
 *
 *  - run summaries (state, counts by task state);
 *  - each run's commits, found by walking history back from the head only as
 *    far as the last walk (or the run's first commit), kept for the most
 *    recently viewed runs. A finished run's commits never change.
 *
 * Tracking stays the only source: nothing here is more than a cache of it.
 */
import { LEGACY_RUNS_DIR, runPaths, RUNS_DIR } from './layout.js';
import type { GitStore, TreeEntry } from './ports.js';
import { readAll } from './run-reader.js';
import { isFinal, type TaskRecord, type TaskState } from './task.js';
import type { RunRecord } from './run.js';
import { parseTaskList, type TaskSpec } from './tracking/records.js';
import { Serial } from './serial.js';

export interface RunSummary {
  id: string;
  project: string;
  file: string;
  state: RunRecord['state'];
  todoCommit: string;
  createdAt: string;
  finishedAt?: string;
  rerunOf?: string;
  doneCommit?: string;
  progress: { done: number; failed: number; total: number };
  /** How many of its tasks are in each state. */
  taskStates: Partial<Record<TaskState, number>>;
}

export interface RunCommit {
  commit: string;
  subject: string;
  /** The task the transition is of; absent for the run's own commits. */
  task?: string;
}

/** How many runs' commit lists are kept. */
const COMMIT_CACHE_RUNS = 256;

type Store = Pick<GitStore, 'head' | 'readFile' | 'listDir' | 'listEntries' | 'history'>;

interface TaskEntry {
  oid: string;
  state: TaskState;
  final: boolean;
}

interface RunEntry {
  /** The run folder's tree id when this entry was read. */
  tree: string;
  record: RunRecord;
  runFile?: string;
  /** Layout 2: what each task's finality depends on beside its state (from tasks.jsonl), and the fan-out folders' tree ids. */
  specs?: Map<string, Pick<TaskSpec, 'maxAttempts' | 'retryOn'>>;
  folders: Map<string, string>;
  tasks: Map<string, TaskEntry>;
  summary: RunSummary;
}

export class TrackingIndex {
  private readonly serial = new Serial();
  private runsById = new Map<string, RunEntry>();
  /** Tree ids of the run folders' parents (`runs/<r1>`, `runs/<r1>/<r2>`, `projects`) last listed. */
  private buckets = new Map<string, { oid: string; runs: TreeEntry[] }>();
  private summariesAt: string | undefined;
  private readonly commits = new Map<string, { at: string; final: boolean; commits: RunCommit[] }>();

  constructor(
    private readonly store: Store,
    readonly repo: string,
  ) {}

  /** Every run, oldest first, as of tracking's head. */
  runs(): Promise<{ head: string | undefined; runs: RunSummary[] }> {
    return this.serial.run(async () => {
      const head = await this.store.head(this.repo);
      if (!head) return { head, runs: [] };
      if (head !== this.summariesAt) await this.refresh(head);
      const runs = [...this.runsById.values()].map((r) => r.summary).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
      return { head, runs };
    });
  }

  /** One run's record and summary as of the head: only what changed in its folder is read. */
  summary(runId: string): Promise<{ head: string | undefined; summary?: RunSummary; record?: RunRecord }> {
    return this.serial.run(async () => {
      const head = await this.store.head(this.repo);
      if (!head) return { head };
      for (const layout of [2, 1] as const) {
        const dir = runPaths({ id: runId, layout }).dir;
        const parent = dir.slice(0, dir.lastIndexOf('/'));
        const entry = (await this.store.listEntries(this.repo, head, parent)).find((e) => e.name === runId && e.type === 'tree');
        if (!entry) continue;
        const run = await this.refreshRun(head, runId, dir, entry.oid, layout);
        return run ? { head, summary: run.summary, record: run.record } : { head };
      }
      return { head };
    });
  }

  private async refresh(head: string): Promise<void> {
    const seen = new Set<string>();
    const visit = async (folder: string, oid: string | undefined, layout: 1 | 2) => {
      for (const e of await this.bucket(head, folder, oid)) {
        if (e.type !== 'tree') continue;
        seen.add(e.name);
        await this.refreshRun(head, e.name, `${folder}/${e.name}`, e.oid, layout);
      }
    };
    const root = await this.store.listEntries(this.repo, head, '');
    const oidOf = (name: string) => root.find((e) => e.name === name && e.type === 'tree')?.oid;
    await visit(LEGACY_RUNS_DIR, oidOf(LEGACY_RUNS_DIR), 1);
    for (const a of await this.bucket(head, RUNS_DIR, oidOf(RUNS_DIR))) {
      if (a.type !== 'tree') continue;
      for (const b of await this.bucket(head, `${RUNS_DIR}/${a.name}`, a.oid)) if (b.type === 'tree') await visit(`${RUNS_DIR}/${a.name}/${b.name}`, b.oid, 2);
    }
    for (const id of [...this.runsById.keys()]) if (!seen.has(id)) this.runsById.delete(id);
    this.summariesAt = head;
  }

  /** A folder's entries, listed again only when its tree id changed. */
  private async bucket(head: string, folder: string, oid: string | undefined): Promise<TreeEntry[]> {
    if (!oid) return [];
    const known = this.buckets.get(folder);
    if (known?.oid === oid) return known.runs;
    const runs = await this.store.listEntries(this.repo, head, folder);
    this.buckets.set(folder, { oid, runs });
    return runs;
  }

  private async refreshRun(head: string, runId: string, dir: string, tree: string, layout: 1 | 2): Promise<RunEntry | undefined> {
    const known = this.runsById.get(runId);
    if (known?.tree === tree) return known;
    const entries = await this.store.listEntries(this.repo, head, dir);
    const runFileOid = entries.find((e) => e.name === 'run.json')?.oid;
    if (!runFileOid) return undefined;
    let record = known?.record;
    if (!known || known.runFile !== runFileOid) {
      const text = await this.store.readFile(this.repo, head, `${dir}/run.json`);
      if (text === undefined) return undefined;
      record = { ...(JSON.parse(text) as RunRecord), layout };
    }
    const run: RunEntry = known ?? { tree, record: record!, folders: new Map(), tasks: new Map(), summary: undefined as unknown as RunSummary };
    run.tree = tree;
    run.record = record!;
    run.runFile = runFileOid;
    if (layout === 2) await this.refreshTasks(head, run, dir, entries);
    else await this.refreshLegacyTasks(head, run);
    run.summary = summarise(run);
    this.runsById.set(runId, run);
    return run;
  }

  /** Layout 2: walks the tasks' fan-out folders, into those whose tree id changed, reading the task files that changed. */
  private async refreshTasks(head: string, run: RunEntry, dir: string, entries: TreeEntry[]): Promise<void> {
    if (!run.specs) {
      const list = await this.store.readFile(this.repo, head, `${dir}/tasks.jsonl`);
      run.specs = new Map((list ? parseTaskList(list) : []).map((s) => [s.id, { maxAttempts: s.maxAttempts, ...(s.retryOn ? { retryOn: s.retryOn } : {}) }]));
    }
    const changed: { id: string; path: string; oid: string }[] = [];
    const walk = async (folder: string, oid: string | undefined) => {
      if (!oid || run.folders.get(folder) === oid) return;
      const items = await this.store.listEntries(this.repo, head, folder);
      await Promise.all(items.filter((e) => e.type === 'tree').map((e) => walk(`${folder}/${e.name}`, e.oid)));
      for (const e of items) {
        if (e.type !== 'blob' || !e.name.endsWith('.json')) continue;
        const id = e.name.slice(0, -5);
        if (run.tasks.get(id)?.oid !== e.oid) changed.push({ id, path: `${folder}/${e.name}`, oid: e.oid });
      }
      run.folders.set(folder, oid);
    };
    await walk(`${dir}/tasks`, entries.find((e) => e.name === 'tasks')?.oid);
    const texts = await readAll(changed, (c) => this.store.readFile(this.repo, head, c.path));
    changed.forEach((c, i) => {
      const t = texts[i] === undefined ? undefined : (JSON.parse(texts[i]!) as TaskRecord);
      if (t) run.tasks.set(c.id, { oid: c.oid, state: t.state, final: isFinal({ ...t, maxAttempts: 1, ...run.specs!.get(c.id) }) });
    });
  }

  /** Layout 1: every task file, read whole (runs from before the fan-out; they no longer change). */
  private async refreshLegacyTasks(head: string, run: RunEntry): Promise<void> {
    const paths = runPaths(run.record);
    const texts = await readAll(run.record.tasks, (id) => this.store.readFile(this.repo, head, paths.taskFile(id)));
    run.tasks.clear();
    texts.forEach((text, i) => {
      if (text === undefined) return;
      const t = JSON.parse(text) as TaskRecord;
      run.tasks.set(run.record.tasks[i]!, { oid: '', state: t.state, final: isFinal(t) });
    });
  }

  /**
   * A run's commits, oldest first, as of `head`. `finished` says the run has
   * its last commit at `head`, so that later heads need no walk for it.
   */
  commitsOf(runId: string, head: string, finished: boolean): Promise<RunCommit[]> {
    return this.serial.run(async () => {
      const cached = this.commits.get(runId);
      if (cached && (cached.final || cached.at === head)) {
        if (finished) cached.final = true;
        this.touch(runId, cached);
        return cached.commits;
      }
      const newer: RunCommit[] = [];
      let reachedCache = false;
      for await (const c of this.store.history(this.repo, head)) {
        if (c.oid === cached?.at) {
          reachedCache = true;
          break;
        }
        const subject = c.message.split('\n', 1)[0]!;
        if (subject.startsWith(`${runId}/`)) newer.push({ commit: c.oid, subject, task: subject.slice(runId.length + 1).split(':', 1)[0]! });
        else if (subject.startsWith(`${runId}: `)) {
          newer.push({ commit: c.oid, subject });
          // A run's first commit records it queued or rejected: nothing of it is older.
          if (/^[^:]+: (queued|rejected) /.test(subject)) break;
        }
      }
      // Without reaching the last walk's head (a forge mirror replays our commits under new ids), the walk went back to the run's start: it has all.
      const commits = [...(reachedCache ? cached!.commits : []), ...newer.reverse()];
      this.touch(runId, { at: head, final: finished, commits });
      return commits;
    });
  }

  private touch(runId: string, entry: { at: string; final: boolean; commits: RunCommit[] }): void {
    this.commits.delete(runId);
    this.commits.set(runId, entry);
    if (this.commits.size > COMMIT_CACHE_RUNS) this.commits.delete(this.commits.keys().next().value!);
  }
}

function summarise(run: RunEntry): RunSummary {
  const r = run.record;
  const taskStates: Partial<Record<TaskState, number>> = {};
  let done = 0;
  let failed = 0;
  for (const t of run.tasks.values()) {
    taskStates[t.state] = (taskStates[t.state] ?? 0) + 1;
    if (!t.final) continue;
    done++;
    if (t.state === 'failed' || t.state === 'skipped') failed++;
  }
  return {
    id: r.id,
    project: r.project,
    file: r.file,
    state: r.state,
    todoCommit: r.todoCommit,
    createdAt: r.createdAt,
    ...(r.finishedAt ? { finishedAt: r.finishedAt } : {}),
    ...(r.rerunOf ? { rerunOf: r.rerunOf } : {}),
    ...(r.doneCommit ? { doneCommit: r.doneCommit } : {}),
    progress: { done, failed, total: r.taskCount ?? run.tasks.size },
    taskStates,
  };
}
