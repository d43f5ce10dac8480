import { formatDuration } from '../../core/duration.js';
import { repoUrl } from '../../client/submit.js';
import { TrackingReader } from '../../client/tracking-reader.js';
import { serverUrl, settingsFrom, UsageError, type Flags } from '../options.js';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export async function statusCommand(flags: Flags, positionals: string[]): Promise<number> {
  const settings = settingsFrom(flags);
  const reader = new TrackingReader(repoUrl(serverUrl(flags), settings.repos.tracking), settings.branch);
  await reader.refresh();
  const runId = positionals[0];
  if (runId) {
    const view = await reader.run(runId);
    if (!view) throw new UsageError(`no run ${runId} in ${settings.repos.tracking}`);
    const r = view.run;
    process.stdout.write(`run ${r.id}  ${r.state}  ${view.progress.done}/${view.progress.total} done  project ${r.project}  file ${r.file}@${r.todoCommit.slice(0, 7)}\n`);
    if (r.rerunOf) process.stdout.write(`re-run of ${r.rerunOf}\n`);
    if (r.cancelled) process.stdout.write(`cancelled: ${r.cancelled}\n`);
    if (r.error) process.stdout.write(`error: ${r.error}\n`);
    if (view.tasks.length) {
      const rows = [['TASK', 'STATE', 'ATTEMPTS', 'EXIT', 'DURATION', 'WORKER']];
      for (const t of view.tasks) {
        rows.push([t.id, t.state, `${t.attempts}/${t.maxAttempts}`, t.exitCode === undefined ? '' : String(t.exitCode), t.durationMs === undefined ? '' : formatDuration(t.durationMs), t.worker?.host ?? '']);
      }
      process.stdout.write(table(rows));
    }
    return 0;
  }
  const ids = await reader.runIds();
  if (!ids.length) {
    process.stdout.write(`no runs yet in ${settings.repos.tracking}\n`);
    return 0;
  }
  const rows = [['RUN', 'STATE', 'DONE', 'FAILED', 'FILE', 'CREATED']];
  const views = [];
  for (const id of ids) {
    const v = await reader.run(id);
    if (v) views.push(v);
  }
  views.sort((a, b) => a.run.createdAt.localeCompare(b.run.createdAt));
  for (const v of views) rows.push([v.run.id, v.run.state, `${v.progress.done}/${v.progress.total}`, String(v.progress.failed), v.run.file, v.run.createdAt]);
  process.stdout.write(table(rows));
  return 0;
}
