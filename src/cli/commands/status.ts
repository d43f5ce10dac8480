import { formatDuration } from '../../core/duration.js';
import { ApiError, runList, runView } from '../../client/api.js';
import { serverUrl, UsageError, type Flags } from '../options.js';
import type { RunView } from '../../core/run-reader.js';
import { TASK_STATES, type TaskState } from '../../core/task.js';

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

/** Past this many tasks, `status RUN` counts them by state and lists those that did not succeed, at most this many. */
export const STATUS_LIST_MAX = 50;

/** What to list of a run's tasks: all of them, those in some states, or (by default) a short list for a big run. */
export interface TaskListing {
  all?: boolean;
  states?: readonly TaskState[];
}

/** `--state failed,running`: the states named, each checked. */
export function parseStates(text: string): TaskState[] {
  const states = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of states) {
    if (!(TASK_STATES as readonly string[]).includes(s)) throw new UsageError(`--state ${JSON.stringify(s)}: a task state is one of ${TASK_STATES.join(', ')}`);
  }
  if (!states.length) throw new UsageError(`--state needs a state: one of ${TASK_STATES.join(', ')}`);
  return states as TaskState[];
}

/** `status RUN`'s text: the run, then its tasks as `listing` says. */
export function runStatusText(view: RunView, listing: TaskListing = {}): string {
  const r = view.run;
  let out = `run ${r.id}  ${r.state}  ${view.progress.done}/${view.progress.total} done  project ${r.project}  file ${r.file}@${r.todoCommit.slice(0, 7)}\n`;
  if (r.rerunOf) out += `re-run of ${r.rerunOf}\n`;
  if (r.cancelled) out += `cancelled: ${r.cancelled}\n`;
  if (r.error) out += `error: ${r.error}\n`;
  if (!view.tasks.length) return out;
  /** Tasks by state, in the states' own order. */
  const count = (tasks: readonly { state: TaskState }[]) => {
    const counts = new Map<TaskState, number>(TASK_STATES.map((s) => [s, 0]));
    for (const t of tasks) counts.set(t.state, counts.get(t.state)! + 1);
    return counts;
  };
  const countText = (counts: Map<TaskState, number>) => [...counts].filter(([, n]) => n > 0).map(([s, n]) => `${n.toLocaleString('en-US')} ${s}`).join(', ');
  const counts = count(view.tasks);
  let shown = view.tasks;
  let footer = '';
  if (listing.states) {
    const wanted = new Set(listing.states);
    shown = view.tasks.filter((t) => wanted.has(t.state));
  } else if (!listing.all && view.tasks.length > STATUS_LIST_MAX) {
    const unfinished = view.tasks.filter((t) => t.state !== 'succeeded');
    shown = unfinished.slice(0, STATUS_LIST_MAX);
    const listed = count(shown);
    const left = new Map([...counts].map(([s, n]) => [s, n - listed.get(s)!]));
    footer = `${(view.tasks.length - shown.length).toLocaleString('en-US')} more not listed (${countText(left)}): --all lists every task, --state STATE those in a state\n`;
  }
  out += `tasks: ${countText(counts)}\n`;
  if (shown.length) {
    const rows = [['TASK', 'STATE', 'ATTEMPTS', 'EXIT', 'DURATION', 'WORKER']];
    for (const t of shown) {
      rows.push([t.id, t.state, `${t.attempts}/${t.maxAttempts}`, t.exitCode === undefined || t.exitCode === null ? '' : String(t.exitCode), t.durationMs === undefined ? '' : formatDuration(t.durationMs), t.worker?.id ?? t.worker?.host ?? '']);
    }
    out += table(rows);
  } else if (listing.states) {
    out += `no task is ${listing.states.join(' or ')}\n`;
  }
  return out + footer;
}

/** `gitjobs status [RUN] [--all] [--state STATE]`: runs and their tasks, as the server reads them from tracking. */
export async function statusCommand(flags: Flags, positionals: string[]): Promise<number> {
  const url = serverUrl(flags);
  const runId = positionals[0];
  const states = typeof flags.state === 'string' ? parseStates(flags.state) : undefined;
  if (!runId && (states || flags.all)) throw new UsageError('--all and --state list the tasks of one run: gitjobs status RUN --all');
  if (runId) {
    const view = await runView(url, runId).catch((err: Error) => {
      throw err instanceof ApiError && err.status !== 0 ? new UsageError(err.message) : err;
    });
    process.stdout.write(runStatusText(view, { all: flags.all === true, ...(states ? { states } : {}) }));
    return 0;
  }
  const { runs } = await runList(url);
  if (!runs.length) {
    process.stdout.write('no runs yet\n');
    return 0;
  }
  const rows = [['RUN', 'STATE', 'DONE', 'FAILED', 'FILE', 'CREATED']];
  for (const r of runs) rows.push([r.id, r.state, `${r.progress.done}/${r.progress.total}`, String(r.progress.failed), r.file, r.createdAt]);
  process.stdout.write(table(rows));
  return 0;
}
