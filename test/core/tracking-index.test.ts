/**
 * The tracking index over a real tracking repository: what it returns is
 * what a full read returns, and it reads only what changed.
 */
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalGitStore } from '../../src/adapters/git/local-store.js';
import type { TaskEvent } from '../../src/core/channels.js';
import { parseProject } from '../../src/core/project.js';
import { TrackingIndex } from '../../src/core/tracking-index.js';
import { readRunView, repoTree } from '../../src/core/run-reader.js';
import { applyEvent } from '../../src/core/tracking/apply-event.js';
import { queuedRun } from '../../src/core/tracking/queue-run.js';
import type { TaskRecord } from '../../src/core/task.js';
import type { RunRecord } from '../../src/core/run.js';
import { rmTree, tmpdir } from '../helpers/stack.js';

const dirs: string[] = [];
const stores: LocalGitStore[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
  dirs.forEach((d) => rmTree(d));
});
const at = '2026-01-01T00:00:00.000Z';

async function setup() {
  const root = tmpdir('index');
  dirs.push(root);
  const real = new LocalGitStore(root);
  stores.push(real);
  await real.create('t');
  // The same store, counting what the index reads from it.
  const reads = { files: 0, commits: 0 };
  const store = {
    head: (r: string) => real.head(r),
    listDir: (r: string, c: string, p: string) => real.listDir(r, c, p),
    listEntries: (r: string, c: string, p: string) => real.listEntries(r, c, p),
    readFile: (r: string, c: string, p: string) => {
      reads.files++;
      return real.readFile(r, c, p);
    },
    async *history(r: string, h: string) {
      for await (const c of real.history(r, h)) {
        reads.commits++;
        yield c;
      }
    },
  };
  return { real, store, reads, index: new TrackingIndex(store, 't') };
}

async function queue(real: LocalGitStore, runId: string, tasks: number) {
  const project = parseProject(`projects/${runId}.json`, JSON.stringify({ tasks: Array.from({ length: tasks }, (_, i) => ({ id: `t${i}`, run: 'true' })) }));
  const q = queuedRun({ runId, file: `projects/${runId}.json`, project, todoCommit: 'a'.repeat(40), configCommit: 'c'.repeat(40), now: at });
  await real.commit('t', q);
  return q;
}

async function transition(real: LocalGitStore, run: RunRecord, task: TaskRecord, kind: 'started' | 'finished'): Promise<TaskRecord> {
  const base = { v: 1 as const, run: run.id, task: task.id, attempt: 1, host: 'h', image: 'sha256:i', at };
  const event: TaskEvent = kind === 'started' ? { ...base, kind } : { ...base, kind, exitCode: 0, durationMs: 5, timedOut: false, stdout: 'ok\n', output: 'ok\n', truncated: false };
  let current = task;
  for (const step of applyEvent(run, task, event)) {
    if (step.kind !== 'applied') continue;
    await real.commit('t', step);
    current = step.task;
  }
  return current;
}

describe('TrackingIndex', () => {
  it('summarises every run and re-reads only the runs whose folder changed', async () => {
    const { real, reads, index } = await setup();
    const a = await queue(real, 'a-0000001', 3);
    const b = await queue(real, 'b-0000002', 2);
    const first = await index.runs();
    expect(first.runs.map((r) => [r.id, r.state, r.progress, r.taskStates])).toEqual([
      ['a-0000001', 'queued', { done: 0, failed: 0, total: 3 }, { queued: 3 }],
      ['b-0000002', 'queued', { done: 0, failed: 0, total: 2 }, { queued: 2 }],
    ]);
    const t = await transition(real, b.run, b.tasks[0]!, 'started');
    await transition(real, b.run, t, 'finished');
    reads.files = 0;
    const second = await index.runs();
    // The one task file that changed (this test's transitions leave run.json as it was); nothing of a.
    expect(reads.files).toBe(1);
    expect(second.runs.find((r) => r.id === 'b-0000002')!.taskStates).toEqual({ succeeded: 1, queued: 1 });
    expect(second.runs.find((r) => r.id === 'a-0000001')).toBe(first.runs.find((r) => r.id === 'a-0000001'));
    reads.files = 0;
    await index.runs();
    expect(reads.files).toBe(0);
    void a;
  });

  it('reads only the task files that changed in a run whose tasks fan out into folders', async () => {
    const { real, reads, index } = await setup();
    const big = await queue(real, 'big-0000001', 600);
    const first = await index.summary('big-0000001');
    expect(first.summary!.progress).toEqual({ done: 0, failed: 0, total: 600 });
    // The run was started by its first task; three tasks finish.
    let run = big.run;
    for (const task of big.tasks.slice(0, 3)) {
      const t = await transition(real, run, task, 'started');
      run = { ...run, state: 'running' };
      await transition(real, run, t, 'finished');
    }
    reads.files = 0;
    const second = await index.summary('big-0000001');
    expect(second.summary!.progress).toEqual({ done: 3, failed: 0, total: 600 });
    expect(second.summary!.taskStates).toEqual({ succeeded: 3, queued: 597 });
    expect(reads.files).toBe(3);
    // The same answer as a full read.
    const full = await readRunView(repoTree(real, 't'), (await real.head('t'))!, 'big-0000001');
    expect(full!.progress).toEqual(second.summary!.progress);
  });

  it('finds a run’s commits walking back only to its first commit, then only to the last walk', async () => {
    const { real, reads, index } = await setup();
    const old = await queue(real, 'old-0000001', 1);
    for (let i = 0; i < 10; i++) await real.commit('t', { changes: [{ path: `noise/${i}`, content: String(i) }], message: `noise ${i}\n` });
    const r = await queue(real, 'r-0000002', 2);
    const t0 = await transition(real, r.run, r.tasks[0]!, 'started');
    let head = (await real.head('t'))!;
    const first = await index.commitsOf('r-0000002', head, false);
    expect(first.map((c) => c.subject)).toEqual(['r-0000002: queued (2 tasks from projects/r-0000002.json)', 'r-0000002/t0: queued -> running (attempt 1/1 on h)']);
    expect(first[1]!.task).toBe('t0');
    expect(reads.commits).toBe(2); // never past the run's queued commit into the noise
    await transition(real, r.run, t0, 'finished');
    await transition(real, old.run, old.tasks[0]!, 'started');
    head = (await real.head('t'))!;
    reads.commits = 0;
    const second = await index.commitsOf('r-0000002', head, false);
    expect(reads.commits).toBe(3); // the two new commits, and the last walk's head
    expect(second.map((c) => c.subject.split(' (')[0])).toEqual(['r-0000002: queued', 'r-0000002/t0: queued -> running', 'r-0000002/t0: running -> succeeded']);
    // The old run is found past the noise, and its first commit ends the walk.
    const olds = await index.commitsOf('old-0000001', head, false);
    expect(olds.map((c) => c.subject.split(' (')[0])).toEqual(['old-0000001: queued', 'old-0000001/t0: queued -> running']);
    // A finished run is not walked again, whatever the head.
    await index.commitsOf('old-0000001', head, true);
    await real.commit('t', { changes: [{ path: 'noise/x', content: 'x' }], message: 'more noise\n' });
    reads.commits = 0;
    expect(await index.commitsOf('old-0000001', (await real.head('t'))!, true)).toHaveLength(2);
    expect(reads.commits).toBe(0);
  });
});
