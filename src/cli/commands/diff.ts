/**
 * `gitjobs diff RUN1 RUN2 [--all]`: what changed between two runs, task by
 * task (state, exit code, output blob, image; durations beside). Exits 0
 * when nothing differs, 1 when something does, as diff(1) does.
 */
import { formatDuration } from '../../core/duration.js';
import type { RunDiff, TaskSide } from '../../core/run-diff.js';
import { ApiError, getJson } from '../../client/api.js';
import { serverUrl, UsageError, type Flags } from '../options.js';
import { table } from './status.js';

const exit = (s: TaskSide) => (s.exitCode === undefined || s.exitCode === null ? '-' : String(s.exitCode));
const short = (oid: string | undefined) => (oid ? oid.replace('sha256:', '').slice(0, 10) : '-');
const dur = (s: TaskSide) => (s.durationMs === undefined ? '-' : formatDuration(s.durationMs));
const pair = (a: string, b: string) => (a === b ? a : `${a} -> ${b}`);

export async function diffCommand(flags: Flags, positionals: string[]): Promise<number> {
  const [a, b] = positionals;
  if (!a || !b || positionals.length > 2) throw new UsageError('diff takes two RUN ids: gitjobs diff RUN1 RUN2');
  const diff = await getJson<RunDiff>(serverUrl(flags), `/api/runs/${encodeURIComponent(a)}/diff/${encodeURIComponent(b)}`).catch((err: Error) => {
    throw err instanceof ApiError && err.status !== 0 ? new UsageError(err.message) : err;
  });
  const shown = flags.all ? diff.tasks : diff.tasks.filter((t) => !t.a || !t.b || t.changed.length);
  process.stdout.write(`${a} -> ${b}: ${diff.tasks.length} task${diff.tasks.length === 1 ? '' : 's'}, ${diff.differing} differ${diff.differing === 1 ? 's' : ''}\n`);
  if (!shown.length) return diff.differing ? 1 : 0;
  const rows = [['TASK', 'STATE', 'EXIT', 'OUTPUT', 'IMAGE', 'DURATION']];
  for (const t of shown) {
    if (!t.a || !t.b) {
      const only = (t.a ?? t.b)!;
      rows.push([t.task, `only in ${t.a ? a : b} (${only.state})`, exit(only), short(only.output), short(only.image), dur(only)]);
      continue;
    }
    const x = t.a;
    const y = t.b;
    const reused = y.reusedFrom ? ` (reused from ${y.reusedFrom})` : y.cachedFrom ? ` (from cache: ${y.cachedFrom})` : '';
    rows.push([t.task, pair(x.state, y.state) + reused, pair(exit(x), exit(y)), pair(short(x.output), short(y.output)), pair(short(x.image), short(y.image)), `${dur(x)} -> ${dur(y)}`]);
  }
  process.stdout.write(table(rows));
  return diff.differing ? 1 : 0;
}
