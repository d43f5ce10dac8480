/**
 * What a task left under /out, committed to the done repository under its
 * run (`<run>/files/<task>/...`) before its success is recorded in
 * tracking, which then names the commit and each file's blob id.
 */
import { entriesOf, filesDir, formatBytes, type FileData, type TaskFiles } from '../core/files.js';
import type { FileChange, GitStore } from '../core/ports.js';
import type { TaskRecord } from '../core/task.js';
import type { RunRecord } from '../core/run.js';
import { commitMessage } from '../core/transition.js';
import { runTrailers } from '../core/tracking/records.js';

/** The files under `dir` at `commit`, by path relative to it, with their blob ids. */
export async function treeBlobs(store: Pick<GitStore, 'listEntries'>, repo: string, commit: string, dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (path: string, rel: string): Promise<void> => {
    for (const e of await store.listEntries(repo, commit, path)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.type === 'tree') await walk(`${path}/${e.name}`, r);
      else if (e.type === 'blob') out.set(r, e.oid);
    }
  };
  await walk(dir, '');
  return out;
}

/** One commit to done with the task's files (and without any an earlier attempt left there); durable when it resolves. */
export async function commitTaskFiles(store: GitStore, doneRepo: string, run: RunRecord, task: string, attempt: number, files: readonly FileData[]): Promise<TaskFiles> {
  const dir = filesDir(run, task);
  const head = await store.head(doneRepo);
  const before = head ? await treeBlobs(store, doneRepo, head, dir) : new Map<string, string>();
  const paths = new Set(files.map((f) => f.path));
  const bytes = files.reduce((n, f) => n + f.data.length, 0);
  const commit = await store.commit(doneRepo, {
    changes: [...[...before.keys()].filter((p) => !paths.has(p)).map((p) => ({ path: `${dir}/${p}`, content: null })), ...files.map((f) => ({ path: `${dir}/${f.path}`, content: f.data }))],
    message: commitMessage(`${run.id}/${task}: ${files.length} file${files.length === 1 ? '' : 's'} from /out (${formatBytes(bytes)}, attempt ${attempt})`, runTrailers(run)),
  });
  // Read back: what the store wrote is what tracking names (a masked secret changes a file's bytes).
  const blobs = await treeBlobs(store, doneRepo, commit, dir);
  return { commit, dir, entries: entriesOf(files, (path) => blobs.get(path)) };
}

/**
 * Files of tasks this run took from another (a re-run's reused tasks,
 * result-cache hits): copied into this run's folder with its result, so
 * that a run's folder in done holds every file its result.json names.
 */
export async function borrowedFiles(store: GitStore, doneRepo: string, run: RunRecord, tasks: Iterable<TaskRecord>): Promise<FileChange[]> {
  const changes: FileChange[] = [];
  for (const t of tasks) {
    if (!t.files || t.state !== 'succeeded' || t.files.dir === filesDir(run, t.id)) continue;
    for (const e of t.files.entries) {
      const data = await store.readBytes(doneRepo, t.files.commit, `${t.files.dir}/${e.path}`);
      if (data) changes.push({ path: `${filesDir(run, t.id)}/${e.path}`, content: data });
    }
  }
  return changes;
}
