/** What a re-run of a run's failed part takes from that run. */
import type { GitStore } from '../core/ports.js';
import { runPaths } from '../core/layout.js';
import { readRunView, readTaskResult, repoTree } from '../core/run-reader.js';
import type { ReuseSource } from '../core/tracking/reuse.js';

/**
 * The results a re-run of a run's failed part reuses: each task that
 * succeeded there, with its log and stdout, and where it comes from (for a
 * task that was itself reused, the run it first succeeded in).
 */
export async function reusable(store: GitStore, tracking: string, head: string, runId: string): Promise<Map<string, ReuseSource>> {
  const view = await readRunView(repoTree(store, tracking), head, runId);
  const out = new Map<string, ReuseSource>();
  if (!view) return out;
  const paths = runPaths(view.run);
  const tree = repoTree(store, tracking);
  for (const record of view.tasks) {
    if (record.state !== 'succeeded') continue;
    const { log, stdout } = await readTaskResult(tree, head, paths, record);
    out.set(record.id, { from: record.reusedFrom ?? { run: runId, task: record.id, commit: head }, record, log, stdout });
  }
  return out;
}

