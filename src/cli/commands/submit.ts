import fs from 'node:fs';
import { parseDuration } from '../../core/duration.js';
import { progressLine, submit, waitForRun } from '../../client/submit.js';
import { serverUrl, settingsFrom, str, UsageError, type Flags } from '../options.js';

export async function submitCommand(flags: Flags, positionals: string[]): Promise<number> {
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new UsageError('submit takes one FILE');
  if (!fs.existsSync(file)) throw new UsageError(`no such file: ${file}`);
  const settings = settingsFrom(flags);
  const url = serverUrl(flags);
  const as = str(flags, 'as');
  const token = process.env.GITJOBS_API_TOKEN || undefined;
  const submitted = await submit({ file, url, repos: settings.repos, branch: settings.branch, ...(as ? { as } : {}), ...(token ? { token } : {}) });
  process.stdout.write(`pushed ${submitted.file} as ${submitted.commit.slice(0, 7)} to ${settings.repos.todo}; run ${submitted.run}\n`);
  if (!flags.wait) return 0;
  const timeoutRaw = str(flags, 'timeout') ?? '30m';
  const timeoutMs = parseDuration(timeoutRaw);
  if (!timeoutMs) throw new UsageError(`--timeout must be a duration such as 30m, not ${JSON.stringify(timeoutRaw)}`);
  let last = '';
  const { view, resultText } = await waitForRun({
    url,
    repos: settings.repos,
    branch: settings.branch,
    run: submitted.run,
    timeoutMs,
    onProgress: (v, elapsed) => {
      const line = progressLine(v, elapsed);
      const key = line.replace(/^\[[^\]]*\] /, '');
      if (key !== last) process.stdout.write(line + '\n');
      last = key;
    },
  });
  if (view.run.state === 'rejected') {
    process.stdout.write(`rejected: ${view.run.error}\n`);
    return 2;
  }
  for (const t of view.tasks.filter((t) => t.state === 'failed')) {
    process.stdout.write(`task ${t.id} failed: ${t.error ?? `exit ${t.exitCode}`}\n${(t.outputTail ?? '').replace(/^/gm, '  | ')}\n`);
  }
  process.stdout.write(`result (${view.run.state}):\n${resultText ?? ''}`);
  return view.run.state === 'succeeded' ? 0 : 1;
}
