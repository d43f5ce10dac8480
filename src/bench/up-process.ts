/** `gitjobs up` as a process of its own, for the bench: its own CPU, its own memory to measure. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { AmqpQueue, DEFAULT_AMQP_URL } from '../adapters/amqp/queue.js';
import { prefixedQueues } from '../core/settings.js';

export const CLI = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../cli/main.js');
const run = promisify(execFile);

export interface UpProcess {
  url: string;
  home: string;
  child: ChildProcess;
  /** Peak resident memory of the process so far (VmHWM), in bytes. */
  peakRss(): number;
  stop(): Promise<void>;
}

export async function startUp(options: { executor: 'process' | 'docker'; workers: number }): Promise<UpProcess> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-bench-up-'));
  const prefix = `gitjobs-bench-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  const child = spawn(process.execPath, [CLI, 'up', '--home', home, '--port', '0', '--workers', String(options.workers), '--executor', options.executor, '--queue-prefix', prefix, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr!.on('data', (d) => (out += d));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /gitjobs is up at (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`gitjobs up exited (${code}) before it was ready:\n${out}`)));
  });
  return {
    url,
    home,
    child,
    peakRss() {
      const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : NaN;
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      const q = await AmqpQueue.connect({ url: process.env.GITJOBS_AMQP_URL ?? DEFAULT_AMQP_URL, queues: prefixedQueues(prefix) });
      await q.deleteQueues().catch(() => undefined);
      await q.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A project file of `n` tasks that each run `true`. */
export function trivialProject(dir: string, name: string, n: number): string {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify({ project: name, tasks: Array.from({ length: n }, (_, i) => ({ id: `t${i}`, run: ['true'] })) }));
  return file;
}

export async function timeCommand(args: string[]): Promise<number> {
  const started = performance.now();
  await run(process.execPath, [CLI, ...args], { maxBuffer: 64 * 1024 * 1024 });
  return (performance.now() - started) / 1000;
}

export function dirBytes(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return total;
}
