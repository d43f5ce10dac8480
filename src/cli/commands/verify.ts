/**
 * `gitjobs verify RUN [--tracking PATH] [--done PATH] [--url URL]`: checks a
 * run from plain clones of tracking and done (core/verify.ts says what is
 * checked). Local clones are read as they are; without them, both
 * repositories are cloned from the server's Git host first. Exit 0 when
 * everything holds, 1 listing each difference.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CloneReader } from '../../adapters/git/clone-reader.js';
import { runPaths } from '../../core/layout.js';
import { readResultJson, readResultText, readRunView, readStdout } from '../../core/run-reader.js';
import type { RunResult } from '../../core/tracking/complete-run.js';
import { verifyRun } from '../../core/verify.js';
import { settingsFrom, str, UsageError, type Flags } from '../options.js';
import { cloneFromServer } from './server-clone.js';

export async function verifyCommand(flags: Flags, positionals: string[]): Promise<number> {
  const runId = positionals[0];
  if (!runId || positionals.length > 1) throw new UsageError('verify takes one RUN id: gitjobs verify RUN [--tracking PATH] [--done PATH]');
  const { repos } = settingsFrom(flags);
  const temp: string[] = [];
  const open = async (flag: string, repo: string) => {
    const local = str(flags, flag);
    if (local) {
      if (!fs.existsSync(local)) throw new UsageError(`--${flag} ${local}: no such folder`);
      return new CloneReader(local);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `gitjobs-verify-${repo}-`));
    temp.push(dir);
    await cloneFromServer(flags, repo, dir);
    return new CloneReader(dir);
  };
  const tracking = await open('tracking', repos.tracking);
  const done = await open('done', repos.done);
  try {
    const head = await tracking.head();
    const view = head ? await readRunView(tracking, head, runId) : undefined;
    if (!head || !view) throw new UsageError(`no run ${runId} in the tracking clone`);
    const paths = runPaths(view.run);
    const finished = (s: string) => s === 'succeeded' || s === 'failed';
    const tasks = await Promise.all(view.tasks.map(async (t) => (finished(t.state) ? { ...t, stdout: await readStdout(tracking, head, paths, t) } : t)));
    const doneHead = await done.head();
    const result = doneHead ? ((await readResultJson(done, doneHead, runId)) as RunResult | undefined) : undefined;
    const resultText = doneHead ? await readResultText(done, doneHead, runId) : undefined;
    const problems = await verifyRun({
      runId,
      run: view.run,
      tasks,
      subjects: await tracking.subjects(),
      result,
      resultText,
      trackingHasCommit: (sha) => tracking.hasCommit(sha),
      doneHasCommit: (sha) => done.hasCommit(sha),
      ...(doneHead ? { doneBlob: (file: string) => done.blobId(doneHead, file) } : {}),
    });
    if (problems.length) {
      process.stdout.write(`${runId}: ${problems.length} difference${problems.length === 1 ? '' : 's'}\n${problems.map((p) => `- ${p}`).join('\n')}\n`);
      return 1;
    }
    process.stdout.write(`${runId}: verified ${tasks.length} task${tasks.length === 1 ? '' : 's'} (${view.run.state}): every transition allowed, outputs and files are the blobs result.json names, the result is what they reduce to, the commits named exist\n`);
    return 0;
  } finally {
    tracking.close();
    done.close();
    for (const d of temp) fs.rmSync(d, { recursive: true, force: true });
  }
}
