/**
 * Transition commits per second of the GitStore, beside `git fast-import`
 * given the very same commits (the same files, the same messages), and the
 * bytes each commit adds to the repository on disk.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalGitStore } from '../adapters/git/local-store.js';
import type { TaskEvent } from '../core/channels.js';
import type { FileChange } from '../core/ports.js';
import { parseProject } from '../core/project.js';
import { applyEvent } from '../core/tracking/apply-event.js';
import { runStarted } from '../core/tracking/complete-run.js';
import { queuedRun } from '../core/tracking/queue-run.js';
import { runChange } from '../core/tracking/records.js';
import { runPaths } from '../core/layout.js';

export interface Commit {
  changes: FileChange[];
  message: string;
}

/** A run of `tasks` trivial tasks: its queued commit, then a started and a finished commit per task. */
export function transitionCommits(tasks: number): { queued: Commit; transitions: Commit[] } {
  const project = parseProject('projects/bench.json', JSON.stringify({ tasks: Array.from({ length: tasks }, (_, i) => ({ id: `t${i}`, run: ['true'] })) }));
  const q = queuedRun({ runId: 'bench-0000000', file: 'projects/bench.json', project, todoCommit: 'a'.repeat(40), configCommit: 'c'.repeat(40), now: '2026-11-27T00:00:00.000Z' });
  let run = q.run;
  const at = '2026-11-27T00:00:01.000Z';
  const base = { v: 1 as const, run: run.id, attempt: 1, host: 'bench', worker: 'bench:1', image: 'process (unsandboxed)', at };
  const transitions: Commit[] = [];
  for (const task of q.tasks) {
    let current = task;
    const events: TaskEvent[] = [
      { ...base, task: task.id, kind: 'started', redelivered: false },
      { ...base, task: task.id, kind: 'finished', exitCode: 0, durationMs: 3, timedOut: false, stdout: '', output: '', truncated: false },
    ];
    for (const event of events) {
      for (const step of applyEvent(run, current, event)) {
        if (step.kind !== 'applied') continue;
        const changes = [...step.changes];
        const started = runStarted(run);
        if (started) {
          run = started;
          changes.push(runChange(runPaths(run), run));
        }
        transitions.push({ changes, message: step.message });
        current = step.task;
      }
    }
  }
  return { queued: { changes: q.changes, message: q.message }, transitions };
}

function du(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? du(p) : fs.statSync(p).size;
  }
  return total;
}

/** Stages every transition as fast as it can (as the collector does under load), then waits until all are durable. */
export async function storeRate(commits: { queued: Commit; transitions: Commit[] }): Promise<{ seconds: number; bytesPerCommit: number; bytes: number }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-bench-store-'));
  const store = new LocalGitStore(root);
  try {
    await store.create('tracking');
    await store.commit('tracking', commits.queued);
    const before = du(path.join(root, 'tracking.git'));
    const started = performance.now();
    let last: Promise<unknown> = Promise.resolve();
    for (const c of commits.transitions) last = (await store.stage('tracking', c)).durable;
    await last;
    const seconds = (performance.now() - started) / 1000;
    await store.close();
    const bytes = du(path.join(root, 'tracking.git')) - before;
    return { seconds, bytes, bytesPerCommit: bytes / commits.transitions.length };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** The same commits through `git fast-import` into a fresh repository, timed whole (stream written, pack and refs done). */
export async function fastImportRate(commits: { queued: Commit; transitions: Commit[] }): Promise<{ seconds: number }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-bench-fi-'));
  try {
    await new Promise<void>((resolve, reject) => spawn('git', ['init', '-q', '--bare', root]).on('exit', (c) => (c === 0 ? resolve() : reject(new Error('git init')))));
    const child = spawn('git', ['--git-dir', root, 'fast-import', '--quiet', '--done'], { stdio: ['pipe', 'ignore', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const person = 'gitjobs <gitjobs@localhost> 1764201600 +0000';
    const write = (s: string | Buffer) => (child.stdin.write(s) ? Promise.resolve() : new Promise<void>((r) => child.stdin.once('drain', r)));
    const data = (b: Buffer) => Buffer.concat([Buffer.from(`data ${b.length}\n`), b, Buffer.from('\n')]);
    const started = performance.now();
    let first = true;
    for (const c of [commits.queued, ...commits.transitions]) {
      const parts: Buffer[] = [Buffer.from(`commit refs/heads/main\ncommitter ${person}\n`), data(Buffer.from(c.message))];
      if (first) first = false;
      for (const ch of c.changes) {
        if (ch.content === null) parts.push(Buffer.from(`D ${ch.path}\n`));
        else parts.push(Buffer.from(`M 100644 inline ${ch.path}\n`), data(Buffer.from(ch.content)));
      }
      parts.push(Buffer.from('\n'));
      await write(Buffer.concat(parts));
    }
    await write('done\n');
    child.stdin.end();
    if ((await exited) !== 0) throw new Error('git fast-import failed');
    return { seconds: (performance.now() - started) / 1000 };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
