/**
 * `npm run bench`: measures, in one run,
 *  1. transitions committed per second to a tracking repository, each its own commit;
 *  2. the wall time per trivial container task: plain `docker run` loop, the
 *     Docker executor alone, and the whole pipeline (push -> result), at the
 *     same concurrency;
 * and prints them as a table with the targets beside them.
 *
 *   node dist/bench/main.js [--transitions 1000] [--tasks 40] [--concurrency 2] [--skip-docker]
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { pino } from 'pino';
import { DEFAULT_AMQP_URL } from '../adapters/amqp/queue.js';
import { DockerExecutor } from '../adapters/docker/executor.js';
import { LocalGitStore } from '../adapters/git/local-store.js';
import { up } from '../app/gitjobs.js';
import { submit, waitForRun } from '../client/submit.js';
import type { TaskEvent } from '../core/messages.js';
import { parseProject } from '../core/project.js';
import { DEFAULT_SETTINGS, prefixedQueues } from '../core/settings.js';
import { applyEvent, queuedRun } from '../core/tracking.js';

const run = promisify(execFile);

async function transitionsPerSecond(count: number): Promise<{ commits: number; seconds: number }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-bench-git-'));
  try {
    const store = new LocalGitStore(root);
    await store.create('tracking');
    const tasks = Math.ceil(count / 2);
    const project = parseProject('projects/bench.json', JSON.stringify({ tasks: Array.from({ length: tasks }, (_, i) => ({ id: `t${i}`, run: 'true' })) }));
    const q = queuedRun({ runId: 'bench-0000000', file: 'projects/bench.json', project, todoCommit: 'a'.repeat(40), configCommit: 'c'.repeat(40), now: new Date().toISOString() });
    await store.commit('tracking', q);
    const at = new Date().toISOString();
    const base = { v: 1 as const, run: q.run.id, attempt: 1, host: 'bench', image: 'sha256:bench', at };
    const started = Date.now();
    let commits = 0;
    for (const task of q.tasks) {
      let current = task;
      const events: TaskEvent[] = [
        { ...base, task: task.id, kind: 'started' },
        { ...base, task: task.id, kind: 'finished', exitCode: 0, durationMs: 250, timedOut: false, stdout: 'ok\n', output: 'ok\n', truncated: false },
      ];
      for (const event of events) {
        for (const step of applyEvent(q.run, current, event)) {
          if (step.kind !== 'applied') continue;
          await store.commit('tracking', step);
          current = step.task;
          commits++;
        }
      }
      if (commits >= count) break;
    }
    return { commits, seconds: (Date.now() - started) / 1000 };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** Runs `count` jobs with `concurrency` lanes; returns wall seconds. */
async function lanes(count: number, concurrency: number, job: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await job(next++);
    }),
  );
  return (Date.now() - started) / 1000;
}

async function containerTimes(tasks: number, concurrency: number) {
  const image = DEFAULT_SETTINGS.baseImage;
  const executor = new DockerExecutor({ baseImage: image });
  await executor.check();
  // Warm up both paths once.
  await run('docker', ['run', '--rm', '--network', 'none', image, 'true']);
  const plain = await lanes(tasks, concurrency, async () => {
    await run('docker', ['run', '--rm', '--network', 'none', image, 'true']);
  });
  const request = { image, argv: ['true'], timeoutMs: 60_000, limits: DEFAULT_SETTINGS.limits, labels: { 'io.gitjobs.run': 'bench' }, env: {}, outputCap: DEFAULT_SETTINGS.outputCap };
  await executor.run(request);
  const direct = await lanes(tasks, concurrency, async () => {
    const r = await executor.run(request);
    if (r.exitCode !== 0) throw new Error(`bench task failed: ${r.output}`);
  });

  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-bench-home-'));
  const settings = { ...DEFAULT_SETTINGS, queues: prefixedQueues(`gitjobs-bench-${process.pid}`) };
  const running = await up({ home, host: '127.0.0.1', port: 0, workers: concurrency, executor: 'docker', amqpUrl: process.env.GITJOBS_AMQP_URL ?? DEFAULT_AMQP_URL, settings, logger: pino({ level: 'warn' }) });
  try {
    const file = path.join(home, 'bench.json');
    // Warm-up run: builds the worker image, so the timed run measures tasks only.
    fs.writeFileSync(file, JSON.stringify({ tasks: [{ id: 'warm', run: ['true'] }] }));
    let sent = await submit({ file, url: running.url, repos: settings.repos, branch: settings.branch, as: 'warmup.json' });
    await waitForRun({ url: running.url, repos: settings.repos, branch: settings.branch, run: sent.run, intervalMs: 50 });
    fs.writeFileSync(file, JSON.stringify({ tasks: Array.from({ length: tasks }, (_, i) => ({ id: `t${i}`, run: ['true'] })) }));
    const started = Date.now();
    sent = await submit({ file, url: running.url, repos: settings.repos, branch: settings.branch });
    const { view } = await waitForRun({ url: running.url, repos: settings.repos, branch: settings.branch, run: sent.run, intervalMs: 50 });
    if (view.run.state !== 'succeeded') throw new Error(`bench run ${view.run.state}`);
    const pipeline = (Date.now() - started) / 1000;
    return { plain, direct, pipeline };
  } finally {
    await running.queue.deleteQueues().catch(() => undefined);
    await running.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

async function main() {
  const { values } = parseArgs({
    options: { transitions: { type: 'string', default: '1000' }, tasks: { type: 'string', default: '40' }, concurrency: { type: 'string', default: '2' }, 'skip-docker': { type: 'boolean' } },
  });
  const transitions = Number(values.transitions);
  const tasks = Number(values.tasks);
  const concurrency = Number(values.concurrency);
  const rows: [string, string, string][] = [];

  const t = await transitionsPerSecond(transitions);
  const rate = t.commits / t.seconds;
  rows.push([`transition commits/s (${t.commits} commits, loose objects written at once)`, rate.toFixed(0), '1000']);

  if (!values['skip-docker']) {
    const c = await containerTimes(tasks, concurrency);
    const per = (s: number) => (s / tasks) * 1000;
    rows.push([`plain \`docker run --rm --network none\`, ms/task (${tasks} tasks, ${concurrency} at a time)`, per(c.plain).toFixed(0), '']);
    rows.push(['Docker executor alone, ms/task', per(c.direct).toFixed(0), '']);
    rows.push(['  overhead vs plain docker run', `${(((c.direct - c.plain) / c.plain) * 100).toFixed(1)} %`, '< 15 %']);
    rows.push(['whole pipeline (push -> result committed), ms/task', per(c.pipeline).toFixed(0), '']);
    rows.push(['  overhead vs plain docker run', `${(((c.pipeline - c.plain) / c.plain) * 100).toFixed(1)} %`, '< 15 %']);
  }

  const w = [Math.max(...rows.map((r) => r[0].length)), Math.max(6, ...rows.map((r) => r[1].length)), 8];
  const line = (r: [string, string, string]) => `${r[0].padEnd(w[0]!)}  ${r[1].padStart(w[1]!)}  ${r[2].padStart(w[2]!)}`;
  process.stdout.write(`gitjobs bench — ${os.cpus().length} cores, node ${process.version}\n\n`);
  process.stdout.write(line(['measure', 'value', 'target']) + '\n');
  process.stdout.write(`${'-'.repeat(w[0]!)}  ${'-'.repeat(w[1]!)}  ${'-'.repeat(w[2]!)}\n`);
  for (const r of rows) process.stdout.write(line(r) + '\n');
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
