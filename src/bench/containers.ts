/**
 * Trivial container tasks, at the same concurrency: a plain `docker run`
 * loop, the Docker executor alone, and the whole pipeline (`gitjobs up
 * --executor docker`, push -> result committed).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DockerExecutor } from '../adapters/docker/executor.js';
import { submit, waitForRun } from '../client/submit.js';
import { DEFAULT_SETTINGS } from '../core/settings.js';
import { startUp, trivialProject } from './up-process.js';

const run = promisify(execFile);

/** Runs `count` jobs with `concurrency` lanes; wall seconds. */
async function lanes(count: number, concurrency: number, job: () => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < count) await job();
  }));
  return (performance.now() - started) / 1000;
}

export async function containerTimes(tasks: number, concurrency: number): Promise<{ plain: number; direct: number; pipeline: number }> {
  const image = DEFAULT_SETTINGS.baseImage;
  const executor = new DockerExecutor({ baseImage: image });
  await executor.check();
  await run('docker', ['run', '--rm', '--network', 'none', image, 'true']);
  const plain = await lanes(tasks, concurrency, async () => void (await run('docker', ['run', '--rm', '--network', 'none', image, 'true'])));
  const request = { image, argv: ['true'], timeoutMs: 60_000, limits: DEFAULT_SETTINGS.limits, labels: { 'io.gitjobs.run': 'bench' }, env: {}, outputCap: DEFAULT_SETTINGS.outputCap };
  await executor.run(request);
  const direct = await lanes(tasks, concurrency, async () => {
    const r = await executor.run(request);
    if (r.exitCode !== 0) throw new Error(`bench task failed: ${r.output}`);
  });
  const up = await startUp({ executor: 'docker', workers: concurrency });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-bench-projects-'));
  const { repos, branch } = DEFAULT_SETTINGS;
  try {
    // Warm-up run: builds the worker image, so that the timed run measures tasks only.
    const warm = await submit({ file: trivialProject(dir, 'warmup', 2), url: up.url, repos, branch });
    await waitForRun({ url: up.url, run: warm.run });
    const started = performance.now();
    const sent = await submit({ file: trivialProject(dir, 'containers', tasks), url: up.url, repos, branch });
    const { view } = await waitForRun({ url: up.url, run: sent.run });
    if (view.run.state !== 'succeeded') throw new Error(`bench run ${view.run.state}`);
    return { plain, direct, pipeline: (performance.now() - started) / 1000 };
  } finally {
    await up.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
