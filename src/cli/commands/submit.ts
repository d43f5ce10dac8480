import fs from 'node:fs';
import { parseDuration } from '../../core/duration.js';
import { submit, waitForRun } from '../../client/submit.js';
import { createProgress } from '../progress.js';
import type { RunView } from '../../core/run-reader.js';
import { serverUrl, settingsFrom, str, UsageError, type Flags } from '../options.js';

export async function submitCommand(flags: Flags, positionals: string[]): Promise<number> {
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new UsageError('submit takes one FILE');
  if (!fs.existsSync(file)) throw new UsageError(`no such file: ${file}`);
  const settings = settingsFrom(flags);
  const url = serverUrl(flags);
  const as = str(flags, 'as');
  const token = process.env.GITJOBS_API_TOKEN || undefined;
  const submitted = await submit({ file, url, repos: settings.repos, branch: settings.branch, ...(as ? { as } : {}), ...(token ? { token } : {}), ...(flags['no-cache'] ? { noCache: true } : {}) });
  process.stdout.write(`pushed ${submitted.file} as ${submitted.commit.slice(0, 7)} to ${settings.repos.todo}; run ${submitted.run}\n`);
  if (!flags.wait) return 0;
  return follow({ url, settings, run: submitted.run, timeoutRaw: str(flags, 'timeout') ?? '30m' });
}

/** Shows a run's progress until its result lands; the exit code says how it ended. */
export async function follow(options: { url: string; settings: ReturnType<typeof settingsFrom>; run: string; timeoutRaw: string }): Promise<number> {
  const { url } = options;
  const timeoutMs = parseDuration(options.timeoutRaw);
  if (!timeoutMs) throw new UsageError(`--timeout must be a duration such as 30m, not ${JSON.stringify(options.timeoutRaw)}`);
  const progress = createProgress();
  let view: RunView;
  let resultText: string | undefined;
  try {
    ({ view, resultText } = await waitForRun({ url, run: options.run, timeoutMs, onProgress: (v, elapsed) => progress.update(v, elapsed) }));
  } finally {
    progress.done();
  }
  if (view.run.state === 'rejected') {
    process.stdout.write(`rejected: ${view.run.error}\n`);
    return 2;
  }
  process.stdout.write(failures(view));
  process.stdout.write(`result (${view.run.state}):\n${resultText ?? ''}`);
  return view.run.state === 'succeeded' ? 0 : 1;
}

/** Failed tasks shown with their output's tail when a followed run ends; the rest are counted. */
export const FAILURES_SHOWN = 10;

/** What a followed run's failed tasks were: the first FAILURES_SHOWN with why and their output's tail, then how to see the others. */
export function failures(view: Pick<RunView, 'run' | 'tasks'>): string {
  const failed = view.tasks.filter((t) => t.state === 'failed');
  let out = '';
  for (const t of failed.slice(0, FAILURES_SHOWN)) {
    // Its output's last lines, each marked; none for a task that printed nothing.
    const tail = (t.outputTail ?? '').replace(/\n$/, '');
    out += `task ${t.id} failed: ${t.error ?? `exit ${t.exitCode}`}\n${tail ? `${tail.replace(/^/gm, '  | ')}\n` : ''}`;
  }
  const more = failed.length - FAILURES_SHOWN;
  if (more > 0) out += `${more.toLocaleString('en-US')} more failed task${more === 1 ? '' : 's'}: \`gitjobs status ${view.run.id} --state failed\` lists them, \`gitjobs logs ${view.run.id} TASK\` shows one's output\n`;
  return out;
}
