import { serverUrl, settingsFrom, str, UsageError, type Flags } from '../options.js';
import { runView } from '../../client/api.js';
import { postToServer } from './cancel.js';
import { follow } from './submit.js';

/**
 * `gitjobs rerun RUN [--failed] [--wait]`: runs a finished run again as a
 * new run (the same project file at the same todo commit, with the config
 * repository as it is now); with --failed, only what did not succeed runs
 * and the rest is reused; with --pinned, the config commit is the run's own.
 * With --wait, follows the new run as `watch` does (and, pinned, says when
 * the base image under the worker images changed since).
 */
export async function rerunCommand(flags: Flags, positionals: string[]): Promise<number> {
  const run = positionals[0];
  if (!run || positionals.length > 1) throw new UsageError('rerun takes one RUN id (see `gitjobs status`)');
  const res = await postToServer(flags, `/api/runs/${encodeURIComponent(run)}/rerun`, {
    ...(flags.failed ? { failed: true } : {}),
    ...(flags.pinned ? { pinned: true } : {}),
    ...(flags['no-cache'] ? { noCache: true } : {}),
  });
  if (res.status !== 202) {
    process.stderr.write(`gitjobs rerun: ${(res.body.error as string | undefined) ?? `HTTP ${res.status}`}\n`);
    return 1;
  }
  const next = res.body.run as string;
  if (res.body.outcome === 'rejected') {
    process.stdout.write(`run ${run} re-run as ${next}, which was rejected: ${res.body.error as string}\n`);
    return 2;
  }
  const tasks = res.body.tasks as number;
  const reused = (res.body.reused as number | undefined) ?? 0;
  process.stdout.write(`run ${run} re-run as ${next} (${tasks} task${tasks === 1 ? '' : 's'} queued${reused ? `, ${reused} reused from ${run}` : ''})\n`);
  if (flags.pinned) process.stdout.write(`pinned to the config commit of ${run}\n`);
  if (!flags.wait) return 0;
  const code = await follow({ url: serverUrl(flags), settings: settingsFrom(flags), run: next, timeoutRaw: str(flags, 'timeout') ?? '30m' });
  if (flags.pinned) {
    const changed = await baseChanges(serverUrl(flags), run, next);
    for (const c of changed) process.stdout.write(`note: the base image has changed since ${run}: ${c} (the pinned Dockerfiles were built on the new one)\n`);
  }
  return code;
}

/** The base images the re-run's tasks ran on that differ from those of the same tasks in the run it repeats. */
export async function baseChanges(url: string, before: string, after: string): Promise<string[]> {
  const [a, b] = await Promise.all([runView(url, before), runView(url, after)]);
  const was = new Map(a.tasks.map((t) => [t.id, t.worker?.base]));
  const out = new Set<string>();
  for (const t of b.tasks) {
    const old = was.get(t.id);
    const now = t.worker?.base;
    if (old && now && old !== now) out.add(`${old.replace('sha256:', '').slice(0, 12)} -> ${now.replace('sha256:', '').slice(0, 12)}`);
  }
  return [...out];
}
