import { serverUrl, settingsFrom, str, UsageError, type Flags } from '../options.js';
import { postToServer } from './cancel.js';
import { follow } from './submit.js';

/**
 * `gitjobs rerun RUN [--wait]`: runs a finished run again as a new run (the
 * same project file at the same todo commit, with the config repository as
 * it is now). With --wait, follows the new run as `watch` does.
 */
export async function rerunCommand(flags: Flags, positionals: string[]): Promise<number> {
  const run = positionals[0];
  if (!run || positionals.length > 1) throw new UsageError('rerun takes one RUN id (see `gitjobs status`)');
  const res = await postToServer(flags, `/api/runs/${encodeURIComponent(run)}/rerun`, {});
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
  process.stdout.write(`run ${run} re-run as ${next} (${tasks} task${tasks === 1 ? '' : 's'} queued)\n`);
  if (!flags.wait) return 0;
  return follow({ url: serverUrl(flags), settings: settingsFrom(flags), run: next, timeoutRaw: str(flags, 'timeout') ?? '30m' });
}
