/**
 * N-Queens through the whole pipeline on Docker workers, beside one task
 * doing all the same work with the same solver in the same image (the mirror
 * symmetry on both sides): push -> result committed, each.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { submit, waitForRun } from '../client/submit.js';
import { NQUEENS_KNOWN, nqueensParts, nqueensTasks } from '../core/nqueens.js';
import { DEFAULT_SETTINGS } from '../core/settings.js';
import { startUp } from './up-process.js';

export async function nqueensTimes(n: number, workers: number): Promise<{ one: number; split: number; splitTasks: number; perWorker: number }> {
  const up = await startUp({ executor: 'docker', workers });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-bench-nqueens-'));
  const { repos, branch } = DEFAULT_SETTINGS;
  const timed = async (name: string, project: object, size = n): Promise<number> => {
    const file = path.join(dir, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify({ project: name, timeout: '10m', ...project }));
    const started = performance.now();
    const sent = await submit({ file, url: up.url, repos, branch });
    const { view, resultText } = await waitForRun({ url: up.url, run: sent.run, timeoutMs: 600_000 });
    if (view.run.state !== 'succeeded' || Number(resultText) !== NQUEENS_KNOWN[size]) throw new Error(`bench ${name}: ${view.run.state}, ${resultText}`);
    return (performance.now() - started) / 1000;
  };
  try {
    // Warm-up: builds the worker image.
    await timed('nqueens-warmup', { nqueens: { n: 8 } }, 8);
    const one = await timed('nqueens-one', { reduce: 'sum', tasks: [{ id: 'all', run: ['node', 'nqueens.js', String(n), `parts=${nqueensParts(n).join(',')}`] }] });
    const split = await timed('nqueens-split', { nqueens: { n } });
    const perWorker = await timed('nqueens-per-worker', { nqueens: { n, tasks: workers } });
    return { one, split, splitTasks: nqueensTasks(n).length, perWorker };
  } finally {
    await up.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
