/**
 * What the dashboard, the API and the metrics read from tracking, kept up to
 * date incrementally instead of re-read on every request:
 *
 *  - run summaries, reused while a run's folder (`projects/<run>/`) has the
 *    same tree id: a request reads only the runs that changed since the last;
 *  - each run's commits, found by walking history back from the head only as
 *    far as the last walk (or the run's first commit), and kept for the most
 *    recently viewed runs. A finished run's commits never change.
 *
 * Tracking stays the only source: nothing here is more than a cache of it.
 */
import type { GitStore } from './ports.js';
import { readRunView, repoTree } from './run-reader.js';
import type { RunRecord } from './run.js';
import { Serial } from './serial.js';
import type { TaskState } from './task.js';

export interface RunSummary {
  id: string;
  project: string;
  file: string;
  state: RunRecord['state'];
  todoCommit: string;
  createdAt: string;
  finishedAt?: string;
  rerunOf?: string;
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

export class TrackingIndex {
  private readonly serial = new Serial();
  private summaries = new Map<string, { tree: string; summary: RunSummary }>();
  private summariesAt: string | undefined;
  private readonly commits = new Map<string, { at: string; final: boolean; commits: RunCommit[] }>();

  constructor(
    private readonly store: Pick<GitStore, 'head' | 'readFile' | 'listDir' | 'listEntries' | 'history'>,
    readonly repo: string,
  ) {}

  /** Every run, oldest first, as of tracking's head. */
  runs(): Promise<{ head: string | undefined; runs: RunSummary[] }> {
    return this.serial.run(async () => {
      const head = await this.store.head(this.repo);
      if (!head) return { head, runs: [] };
      if (head !== this.summariesAt) {
        const source = repoTree(this.store, this.repo);
        const next = new Map<string, { tree: string; summary: RunSummary }>();
        for (const entry of await this.store.listEntries(this.repo, head, 'projects')) {
          if (entry.type !== 'tree') continue;
          const known = this.summaries.get(entry.name);
          if (known?.tree === entry.oid) {
            next.set(entry.name, known);
            continue;
          }
          const view = await readRunView(source, head, entry.name);
          if (!view) continue;
          const taskStates: Partial<Record<TaskState, number>> = {};
          for (const t of view.tasks) taskStates[t.state] = (taskStates[t.state] ?? 0) + 1;
          const r = view.run;
          const summary: RunSummary = {
            id: r.id,
            project: r.project,
            file: r.file,
            state: r.state,
            todoCommit: r.todoCommit,
            createdAt: r.createdAt,
            ...(r.finishedAt ? { finishedAt: r.finishedAt } : {}),
            ...(r.rerunOf ? { rerunOf: r.rerunOf } : {}),
            progress: view.progress,
            taskStates,
          };
          next.set(entry.name, { tree: entry.oid, summary });
        }
        this.summaries = next;
        this.summariesAt = head;
      }
      const runs = [...this.summaries.values()].map((s) => s.summary).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
      return { head, runs };
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
