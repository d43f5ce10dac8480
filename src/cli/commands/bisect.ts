/**
 * `gitjobs bisect RUN TASK --good CONFIG --bad CONFIG`: which config commit
 * broke a task. TASK of RUN runs again at config commits between the two
 * (a clone of the config repository from the server's Git host says which,
 * and in what order), halving the range each time, as `git bisect` does;
 * each step is a re-run of RUN with that one task, recorded like any run.
 * Prints the first config commit at which the task fails, with its subject.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseDuration } from '../../core/duration.js';
import { waitForRun } from '../../client/submit.js';
import { serverUrl, settingsFrom, str, UsageError, type Flags } from '../options.js';
import { postToServer } from './cancel.js';
import { cloneFromServer } from './server-clone.js';

const run = promisify(execFile);

export async function bisectCommand(flags: Flags, positionals: string[]): Promise<number> {
  const [runId, task] = positionals;
  const good = str(flags, 'good');
  const bad = str(flags, 'bad');
  if (!runId || !task || positionals.length > 2 || !good || !bad) throw new UsageError('bisect takes RUN TASK --good CONFIG_COMMIT --bad CONFIG_COMMIT');
  const timeoutMs = parseDuration(str(flags, 'timeout') ?? '30m');
  if (timeoutMs === undefined) throw new UsageError(`--timeout: not a duration: ${str(flags, 'timeout')}`);
  const url = serverUrl(flags);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-bisect-'));
  try {
    await cloneFromServer(flags, settingsFrom(flags).repos.config, dir);
    const git = async (...args: string[]) => (await run('git', ['--git-dir', dir, ...args], { maxBuffer: 1 << 26 })).stdout.trim();
    const resolve = (name: string, rev: string) =>
      git('rev-parse', '--verify', '--quiet', `${rev}^{commit}`).catch(() => {
        throw new UsageError(`--${name} ${rev}: no such commit in the config repository`);
      });
    const [goodSha, badSha] = [await resolve('good', good), await resolve('bad', bad)];
    const isAncestor = await run('git', ['--git-dir', dir, 'merge-base', '--is-ancestor', goodSha, badSha]).then(() => true, () => false);
    if (!isAncestor || goodSha === badSha) throw new UsageError(`--good ${good} must be an earlier commit than --bad ${bad} on the config history`);
    // The commits after good, up to and including bad, oldest first: the first failing one is the answer.
    const candidates = (await git('rev-list', '--reverse', '--ancestry-path', `${goodSha}..${badSha}`)).split('\n').filter(Boolean);
    const subject = (sha: string) => git('log', '-1', '--format=%s', sha);
    process.stdout.write(`bisecting ${task} of ${runId}: ${candidates.length} config commit${candidates.length === 1 ? '' : 's'} after ${goodSha.slice(0, 7)}, up to ${badSha.slice(0, 7)}\n`);
    let lo = -1;
    let hi = candidates.length - 1;
    let step = 0;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      const sha = candidates[mid]!;
      const res = await postToServer(flags, `/api/runs/${encodeURIComponent(runId)}/rerun`, { tasks: [task], config: sha });
      if (res.status !== 202 || res.body.outcome !== 'queued') {
        process.stderr.write(`gitjobs bisect: ${(res.body.error as string | undefined) ?? `HTTP ${res.status}`}\n`);
        return 1;
      }
      const stepRun = res.body.run as string;
      const { view } = await waitForRun({ url, run: stepRun, timeoutMs });
      const state = view.tasks.find((t) => t.id === task)?.state;
      if (state !== 'succeeded' && state !== 'failed') {
        process.stderr.write(`gitjobs bisect: ${task} ended ${state ?? 'missing'} in ${stepRun}; stopping\n`);
        return 1;
      }
      step++;
      process.stdout.write(`step ${step}: config ${sha.slice(0, 7)} ${JSON.stringify(await subject(sha))}: ${state === 'succeeded' ? 'good' : 'bad'} (run ${stepRun})\n`);
      if (state === 'succeeded') lo = mid;
      else hi = mid;
    }
    const first = candidates[hi]!;
    process.stdout.write(`first bad config commit: ${first} ${await subject(first)}\n`);
    return 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
