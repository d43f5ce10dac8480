/**
 * N-Queens through the whole pipeline on Docker workers, beside one task
 * doing all the same work with the same solver in the same image (the mirror
 * symmetry on both sides): push -> result committed, each. The machine's
 * speed drifts from one minute to the next, so each is timed twice, in the
 * order one, split, split, one (and the 8-task split in the middle): a
 * drift weighs on both sides alike. Beside them, the machine's own ceiling:
 * the default split's parts as bare solver processes on the host, side by
 * side, against one process doing them all (no container, no gitjobs), in
 * the same order.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { TEMPLATE_DIR } from '../adapters/builtin/forge.js';
import { submit, waitForRun } from '../client/submit.js';
import { NQUEENS_KNOWN, nqueensParts, nqueensTasks } from '../core/nqueens.js';
import { DEFAULT_SETTINGS } from '../core/settings.js';
import { startUp } from './up-process.js';

export interface NqueensTimes {
  /** One task doing all of it, s (the mean of two). */
  one: number;
  /** The default split, s (the mean of two). */
  split: number;
  splitTasks: number;
  /** Split into `wide` tasks, as for a cluster of that many slots, s (the mean of two). */
  wide: number;
  wideTasks: number;
  /** The default split's parts as bare host processes: one doing them all, and side by side, s (means of two). */
  bare: { one: number; split: number };
}

const run = promisify(execFile);
const SOLVER = path.join(TEMPLATE_DIR, 'config/workers/default/nqueens.js');

/** Seconds until every one of these solver processes has exited. */
async function bareTime(argvs: string[][]): Promise<number> {
  const started = performance.now();
  await Promise.all(argvs.map(([, , ...args]) => run(process.execPath, [SOLVER, ...args])));
  return (performance.now() - started) / 1000;
}

export async function nqueensTimes(n: number, workers: number, wideTasks = 8): Promise<NqueensTimes> {
  const up = await startUp({ executor: 'docker', workers });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-bench-nqueens-'));
  const { repos, branch } = DEFAULT_SETTINGS;
  let count = 0;
  const timed = async (name: string, project: object, size = n): Promise<number> => {
    const file = path.join(dir, `${name}-${++count}.json`);
    fs.writeFileSync(file, JSON.stringify({ project: `${name}-${count}`, timeout: '10m', ...project }));
    const started = performance.now();
    const sent = await submit({ file, url: up.url, repos, branch });
    const { view, resultText } = await waitForRun({ url: up.url, run: sent.run, timeoutMs: 600_000 });
    if (view.run.state !== 'succeeded' || Number(resultText) !== NQUEENS_KNOWN[size]) throw new Error(`bench ${name}: ${view.run.state}, ${resultText}`);
    return (performance.now() - started) / 1000;
  };
  // One task (or process) doing every part, with the solver the split's tasks run.
  const all = ['node', 'nqueens.js', String(n), `parts=${nqueensParts(n).join(',')}`];
  const one = () => timed('nqueens-one', { reduce: 'sum', tasks: [{ id: 'all', run: all }] });
  const split = () => timed('nqueens-split', { nqueens: { n } });
  const wide = () => timed('nqueens-wide', { nqueens: { n, tasks: wideTasks } });
  const parts = nqueensTasks(n).map((t) => t.argv);
  const bareOne = () => bareTime([all]);
  const bareSplit = () => bareTime(parts);
  try {
    const bare = { one: [await bareOne()], split: [await bareSplit()] };
    bare.split.push(await bareSplit());
    bare.one.push(await bareOne());
    // Warm-up: builds the worker image.
    await timed('nqueens-warmup', { nqueens: { n: 8 } }, 8);
    const times = { one: [await one()], split: [await split()], wide: [await wide()] };
    times.wide.push(await wide());
    times.split.push(await split());
    times.one.push(await one());
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    return {
      one: mean(times.one),
      split: mean(times.split),
      splitTasks: parts.length,
      wide: mean(times.wide),
      wideTasks: nqueensTasks(n, wideTasks).length,
      bare: { one: mean(bare.one), split: mean(bare.split) },
    };
  } finally {
    await up.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
