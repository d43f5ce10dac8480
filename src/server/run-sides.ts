/** A run's tasks as `diff` compares them, with the blob id of each task's output read from tracking's trees. */
import type { GitStore } from '../core/ports.js';
import { runPaths } from '../core/layout.js';
import { readRunView, repoTree } from '../core/run-reader.js';
import { sideOf, type TaskSide } from '../core/run-diff.js';

export async function sidesOf(store: GitStore, repo: string, head: string, runId: string): Promise<Map<string, TaskSide> | undefined> {
  const view = await readRunView(repoTree(store, repo), head, runId);
  if (!view) return undefined;
  const paths = runPaths(view.run);
  // One listing per folder, however many tasks' outputs are in it.
  const folders = new Map<string, Promise<Map<string, string>>>();
  const blobOf = async (file: string) => {
    const slash = file.lastIndexOf('/');
    const dir = file.slice(0, slash);
    let entries = folders.get(dir);
    if (!entries) {
      entries = store.listEntries(repo, head, dir).then((list) => new Map(list.map((e) => [e.name, e.oid])), () => new Map<string, string>());
      folders.set(dir, entries);
    }
    return (await entries).get(file.slice(slash + 1));
  };
  const sides = new Map<string, TaskSide>();
  for (const task of view.tasks) {
    const finished = task.state === 'succeeded' || task.state === 'failed' || task.durationMs !== undefined;
    const output = finished ? await blobOf(task.stdoutFile ?? paths.logFile(task.id)) : undefined;
    sides.set(task.id, sideOf(task, output));
  }
  return sides;
}
