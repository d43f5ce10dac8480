/**
 * `npm run bench`: measures, in one run on this machine, each figure beside
 * its floor (what the machine itself does without gitjobs) and its target.
 *
 *   node dist/bench/main.js [--tasks 10000] [--small 1000] [--concurrency 8]
 *                           [--container-tasks 100] [--container-concurrency 2]
 *                           [--nqueens 16] [--runs 3] [--skip-docker] [--skip-pipeline] [--skip-store] [--skip-nqueens]
 *
 * The pipeline, container and N-Queens sections run `--runs` times (each in
 * fresh processes, the floor beside each pipeline run): on a shared virtual
 * machine one run can land in a slow minute. Targets are judged on the
 * median run's figures (on the highest for peak memory), and every run's
 * figure is printed beside it.
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { containerTimes } from './containers.js';
import { nqueensTimes } from './nqueens.js';
import { processPipeline, spawnLoop } from './pipeline.js';
import { fastImportRate, storeRate, transitionCommits } from './store-rate.js';

/**
 * Each measure runs in a fresh process of its own: a measure must not pay for
 * the memory another one left behind (a fork, for one, costs more the larger
 * the process that makes it).
 */
async function isolated<T>(part: string, args: string[]): Promise<T> {
  const { stdout } = await promisify(execFile)(process.execPath, [fileURLToPath(import.meta.url), '--part', part, ...args], { maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}

const PARTS: Record<string, (v: Record<string, string>) => Promise<unknown>> = {
  store: async (v) => {
    const commits = transitionCommits(Number(v.tasks));
    return { ours: await storeRate(commits), fi: await fastImportRate(commits), n: commits.transitions.length };
  },
  floor: (v) => spawnLoop(Number(v.tasks), Number(v.concurrency)),
  pipeline: (v) => processPipeline([Number(v.small), Number(v.tasks)], Number(v.concurrency)),
  containers: (v) => containerTimes(Number(v['container-tasks']), Number(v['container-concurrency'])),
  nqueens: (v) => nqueensTimes(Number(v.nqueens), Number(v['container-concurrency'])),
};

type Row = [measure: string, value: string, target: string, ok?: boolean];

const MB = 1024 * 1024;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main() {
  const { values } = parseArgs({
    options: {
      tasks: { type: 'string', default: '10000' },
      small: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '8' },
      'container-tasks': { type: 'string', default: '100' },
      'container-concurrency': { type: 'string', default: '2' },
      'skip-docker': { type: 'boolean' },
      'skip-pipeline': { type: 'boolean' },
      'skip-store': { type: 'boolean' },
      'skip-nqueens': { type: 'boolean' },
      nqueens: { type: 'string', default: '16' },
      runs: { type: 'string', default: '3' },
      part: { type: 'string' },
    },
  });
  if (values.part) {
    process.stdout.write(JSON.stringify(await PARTS[values.part]!(values as unknown as Record<string, string>)) + '\n');
    return;
  }
  const pass = ['--tasks', values.tasks!, '--small', values.small!, '--concurrency', values.concurrency!, '--container-tasks', values['container-tasks']!, '--container-concurrency', values['container-concurrency']!, '--nqueens', values.nqueens!];
  const big = Number(values.tasks);
  const small = Number(values.small);
  const concurrency = Number(values.concurrency);
  const runs = Math.max(1, Number(values.runs));
  const rows: Row[] = [];
  /** `f` run `runs` times, in order. */
  const repeat = async <T>(f: (i: number) => Promise<T>): Promise<T[]> => {
    const out: T[] = [];
    for (let i = 0; i < runs; i++) out.push(await f(i));
    return out;
  };
  const each = (xs: number[], digits: number, unit = '') => (runs > 1 ? `  (runs: ${xs.map((x) => fmt(x, digits) + unit).join(' / ')})` : '');
  const say = (s: string) => process.stderr.write(`bench: ${s}\n`);

  if (!values['skip-store']) {
    say(`store: ${big} tasks' transitions, then git fast-import of the same commits`);
    const { ours, fi, n } = await isolated<{ ours: Awaited<ReturnType<typeof storeRate>>; fi: Awaited<ReturnType<typeof fastImportRate>>; n: number }>('store', pass);
    const rate = n / ours.seconds;
    const fiRate = (n + 1) / fi.seconds;
    rows.push([`store: transition commits/s (${fmt(n)} commits, each its own)`, fmt(rate), '≥ 3,000', rate >= 3000]);
    rows.push(['  git fast-import, same commits, commits/s', fmt(fiRate), '']);
    rows.push(['  store / fast-import', `${fmt((rate / fiRate) * 100)} %`, '≥ 40 %', rate / fiRate >= 0.4]);
    rows.push(['  new bytes on disk per transition commit', fmt(ours.bytesPerCommit), '≤ 8,192', ours.bytesPerCommit <= 8192]);
  }

  if (!values['skip-pipeline']) {
    const measured = await repeat(async (i) => {
      say(`plain loop: ${big} x \`true\`, ${concurrency} at a time (run ${i + 1} of ${runs})`);
      const floor = await isolated<number>('floor', pass);
      say(`pipeline: gitjobs up --executor process --workers ${concurrency}, runs of ${small} and ${big} tasks (run ${i + 1} of ${runs})`);
      return { floor, p: await isolated<Awaited<ReturnType<typeof processPipeline>>>('pipeline', pass) };
    });
    const floors = measured.map((m) => m.floor);
    const bigs = measured.map((m) => m.p.seconds[big]!);
    const ratios = measured.map((m) => m.p.seconds[big]! / m.floor);
    const perSmall = median(measured.map((m) => (m.p.seconds[small]! / small) * 1000));
    const perBig = median(measured.map((m) => (m.p.seconds[big]! / big) * 1000));
    const transitions = Math.min(...measured.map((m) => m.p.transitions));
    const tracking = median(measured.map((m) => m.p.trackingBytes));
    const statuses = measured.map((m) => m.p.statusSeconds);
    const rss = Math.max(...measured.map((m) => m.p.peakRss));
    rows.push([`plain spawn loop, ${fmt(big)} x true, ${concurrency} at a time, s${each(floors, 1)}`, fmt(median(floors), 1), '']);
    rows.push([`pipeline, ${fmt(big)} tasks, push -> result committed, s${each(bigs, 1)}`, fmt(median(bigs), 1), '< 30', median(bigs) < 30]);
    rows.push([`  pipeline / plain loop${each(ratios, 2, 'x')}`, `${fmt(median(ratios), 2)}x`, '≤ 2.5x', median(ratios) <= 2.5]);
    rows.push([`  transition commits of that run (each its own; fewest of the runs)`, fmt(transitions), `≥ ${fmt(2 * big)}`, transitions >= 2 * big]);
    rows.push([`pipeline, ms per task at ${fmt(small)} tasks`, fmt(perSmall, 2), '']);
    rows.push([`pipeline, ms per task at ${fmt(big)} tasks`, fmt(perBig, 2), `≤ ${fmt(perSmall * 1.25, 2)} (+25 %)`, perBig <= perSmall * 1.25]);
    rows.push(['tracking repository on disk after both runs, MB', fmt(tracking / MB, 1), '< 50', tracking < 50 * MB]);
    rows.push([`gitjobs status RUN --all (every task listed) of the ${fmt(big)}-task run, s${each(statuses, 2)}`, fmt(median(statuses), 2), '< 1', median(statuses) < 1]);
    rows.push([`peak RSS of gitjobs up, MB (highest of the runs)${each(measured.map((m) => m.p.peakRss / MB), 0)}`, fmt(rss / MB), '< 400', rss < 400 * MB]);
  }

  if (!values['skip-docker']) {
    const tasks = Number(values['container-tasks']);
    const lanes = Number(values['container-concurrency']);
    const cs = await repeat((i) => {
      say(`containers: ${tasks} trivial tasks, ${lanes} at a time: docker run, the executor alone, the pipeline (run ${i + 1} of ${runs})`);
      return isolated<Awaited<ReturnType<typeof containerTimes>>>('containers', pass);
    });
    const per = (s: number) => (s / tasks) * 1000;
    const ratios = cs.map((c) => c.pipeline / c.direct);
    rows.push([`plain \`docker run --rm --network none\`, ms/task (${tasks} tasks, ${lanes} at a time)`, fmt(median(cs.map((c) => per(c.plain)))), '']);
    rows.push(['Docker executor alone, ms/task', fmt(median(cs.map((c) => per(c.direct)))), '']);
    rows.push(['whole pipeline (push -> result committed), ms/task', fmt(median(cs.map((c) => per(c.pipeline)))), '']);
    rows.push([`  pipeline / executor alone${each(ratios, 2, 'x')}`, `${fmt(median(ratios), 2)}x`, '≤ 1.25x', median(ratios) <= 1.25]);
  }

  if (!values['skip-docker'] && !values['skip-nqueens']) {
    const n = Number(values.nqueens);
    const lanes = Number(values['container-concurrency']);
    say(`N-Queens n = ${n}: one task doing all the work, and split, on ${lanes} Docker workers, each twice (one, split, split, one); first the same parts as bare processes`);
    const qs = await repeat(() => isolated<Awaited<ReturnType<typeof nqueensTimes>>>('nqueens', pass));
    const split = qs.map((q) => q.one / q.split);
    const wide = qs.map((q) => q.one / q.wide);
    rows.push([`N-Queens n = ${n}, one task doing it all (mirror symmetry), push -> result, s`, fmt(median(qs.map((q) => q.one)), 2), '']);
    rows.push([`  split into ${qs[0]!.splitTasks} tasks (the default) on ${lanes} workers, s`, fmt(median(qs.map((q) => q.split)), 2), '']);
    rows.push([`    speed-up${each(split, 2, 'x')}`, `${fmt(median(split), 2)}x`, '≥ 1.8x', median(split) >= 1.8]);
    rows.push([`  split into ${qs[0]!.wideTasks} tasks ("tasks": ${qs[0]!.wideTasks}, for a bigger cluster), s`, fmt(median(qs.map((q) => q.wide)), 2), '']);
    rows.push([`    speed-up${each(wide, 2, 'x')}`, `${fmt(median(wide), 2)}x`, '']);
    const bare = qs.map((q) => q.bare.one / q.bare.split);
    rows.push([`  ceiling: the same parts as bare processes, side by side vs one${each(bare, 2, 'x')}`, `${fmt(median(bare), 2)}x`, '']);
  }

  if (rows.length === 0) {
    process.stdout.write('gitjobs bench: every section was skipped; nothing measured (N-Queens runs on Docker: it needs the docker section)\n');
    return;
  }
  const w = [Math.max(...rows.map((r) => r[0].length)), Math.max(6, ...rows.map((r) => r[1].length)), Math.max(8, ...rows.map((r) => r[2].length))];
  const line = (r: Row) => `${r[0].padEnd(w[0]!)}  ${r[1].padStart(w[1]!)}  ${r[2].padStart(w[2]!)}${r[3] === undefined ? '' : r[3] ? '  met' : '  MISSED'}`;
  process.stdout.write(`gitjobs bench — ${os.cpus().length} cores, node ${process.version}\n\n`);
  process.stdout.write(line(['measure', 'value', 'target']) + '\n');
  process.stdout.write(`${'-'.repeat(w[0]!)}  ${'-'.repeat(w[1]!)}  ${'-'.repeat(w[2]!)}\n`);
  for (const r of rows) process.stdout.write(line(r) + '\n');
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
