import { formatDuration } from '../../core/duration.js';
import { ApiError, runList, runView } from '../../client/api.js';
import { serverUrl, UsageError, type Flags } from '../options.js';

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

/** `gitjobs status [RUN]`: runs and their tasks, as the server reads them from tracking. */
export async function statusCommand(flags: Flags, positionals: string[]): Promise<number> {
  const url = serverUrl(flags);
  const runId = positionals[0];
  if (runId) {
    const view = await runView(url, runId).catch((err: Error) => {
      throw err instanceof ApiError && err.status !== 0 ? new UsageError(err.message) : err;
    });
    const r = view.run;
    process.stdout.write(`run ${r.id}  ${r.state}  ${view.progress.done}/${view.progress.total} done  project ${r.project}  file ${r.file}@${r.todoCommit.slice(0, 7)}\n`);
    if (r.rerunOf) process.stdout.write(`re-run of ${r.rerunOf}\n`);
    if (r.cancelled) process.stdout.write(`cancelled: ${r.cancelled}\n`);
    if (r.error) process.stdout.write(`error: ${r.error}\n`);
    if (view.tasks.length) {
      const rows = [['TASK', 'STATE', 'ATTEMPTS', 'EXIT', 'DURATION', 'WORKER']];
      for (const t of view.tasks) {
        rows.push([t.id, t.state, `${t.attempts}/${t.maxAttempts}`, t.exitCode === undefined || t.exitCode === null ? '' : String(t.exitCode), t.durationMs === undefined ? '' : formatDuration(t.durationMs), t.worker?.host ?? '']);
      }
      process.stdout.write(table(rows));
    }
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
