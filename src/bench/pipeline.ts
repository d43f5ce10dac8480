/**
 * Many trivial tasks through the whole pipeline (`gitjobs up --executor
 * process`, push -> result committed), beside a plain loop spawning the
 * same number of `true` at the same concurrency: the floor no runner of
 * processes can go under on this machine.
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { submit, waitForRun } from '../client/submit.js';
import { DEFAULT_SETTINGS } from '../core/settings.js';
import { dirBytes, startUp, timeCommand, trivialProject } from './up-process.js';

/** Spawns `true` `count` times, `concurrency` at a time; wall seconds. */
export async function spawnLoop(count: number, concurrency: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < count) await new Promise((r) => spawn('true', { stdio: 'ignore' }).on('exit', r));
    }),
  );
  return (performance.now() - started) / 1000;
}

export interface PipelineFigures {
  seconds: Record<number, number>;
  transitions: number;
  trackingBytes: number;
  statusSeconds: number;
  peakRss: number;
}

/** One `up`, runs of each size in turn (after a warm-up run), timed from the push to the committed result. */
export async function processPipeline(sizes: number[], concurrency: number): Promise<PipelineFigures> {
  const up = await startUp({ executor: 'process', workers: concurrency });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-bench-projects-'));
  const { repos, branch } = DEFAULT_SETTINGS;
  try {
    const warm = await submit({ file: trivialProject(dir, 'warmup', 2), url: up.url, repos, branch });
    await waitForRun({ url: up.url, run: warm.run });
    const seconds: Record<number, number> = {};
    let last = '';
    for (const n of sizes) {
      const file = trivialProject(dir, `bench-${n}`, n);
      const started = performance.now();
      const sent = await submit({ file, url: up.url, repos, branch });
      const { view } = await waitForRun({ url: up.url, run: sent.run });
      seconds[n] = (performance.now() - started) / 1000;
      if (view.run.state !== 'succeeded') throw new Error(`bench run ${sent.run} ended ${view.run.state}`);
      last = sent.run;
    }
    const gitdir = path.join(up.home, 'repos', `${repos.tracking}.git`);
    const subjects = execFileSync('git', ['--git-dir', gitdir, 'log', '--format=%s', 'main'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 }).split('\n');
    const transitions = subjects.filter((s) => s.startsWith(`${last}/`)).length;
    const statusSeconds = await timeCommand(['status', last, '--all', '--url', up.url]);
    const peakRss = up.peakRss();
    return { seconds, transitions, trackingBytes: dirBytes(gitdir), statusSeconds, peakRss };
  } finally {
    await up.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
