import { describe, expect, it } from 'vitest';
import { blobId } from '../../src/core/git-ids.js';
import { parseProject } from '../../src/core/project.js';
import type { RunRecord } from '../../src/core/run.js';
import type { TaskRecord } from '../../src/core/task.js';
import { completeRun } from '../../src/core/tracking/complete-run.js';
import { queuedRun } from '../../src/core/tracking/queue-run.js';
import { transitionsOf, verifyRun, type VerifyInput } from '../../src/core/verify.js';

const q = queuedRun({ runId: 'v-1', file: 'projects/v.json', project: parseProject('projects/v.json', JSON.stringify({ tasks: [{ id: 'a', run: 'x' }, { id: 'b', run: 'x' }] })), todoCommit: 't', configCommit: 'c', now: 'n' });
const done = (id: string, stdout: string): TaskRecord => ({ ...q.tasks.find((t) => t.id === id)!, state: 'succeeded', attempts: 1, exitCode: 0, durationMs: 1, stdout });
const subjects = ['v-1: queued (2 tasks from projects/v.json)', 'v-1/a: queued -> running (attempt 1/1 on h)', 'v-1/b: queued -> running (attempt 1/1 on h)', 'v-1/a: running -> succeeded (exit 0)', 'v-1/b: running -> succeeded (exit 0)', 'v-1: running -> succeeded (2/2)'];

function input(over: Partial<VerifyInput> = {}): VerifyInput {
  const tasks = [done('a', 'A\n'), done('b', 'B\n')];
  const running: RunRecord = { ...q.run, state: 'running' };
  const c = completeRun(running, tasks, 'trk', 'f');
  return {
    runId: 'v-1',
    run: { ...c.run, doneCommit: 'dn' },
    tasks,
    subjects,
    result: c.result,
    resultText: c.resultChanges[1]!.content as string,
    trackingHasCommit: async (sha) => sha === 'trk',
    doneHasCommit: async (sha) => sha === 'dn',
    ...over,
  };
}

describe('verify', () => {
  it('finds nothing wrong with a run as gitjobs recorded it', async () => {
    expect(await verifyRun(input())).toEqual([]);
  });

  it('reads each task’s steps from the subjects, skipping what is not a transition', () => {
    expect(transitionsOf('v-1', [...subjects, 'v-1/a: cancelled (output of attempt 1 kept, 1s)', 'v-10/a: queued -> running', 'v-1/a.b: queued -> succeeded (reused from v-0/a.b at 1234567)'])).toEqual(
      new Map([
        ['a', [{ from: 'queued', to: 'running' }, { from: 'running', to: 'succeeded' }]],
        ['b', [{ from: 'queued', to: 'running' }, { from: 'running', to: 'succeeded' }]],
        ['a.b', [{ from: 'queued', to: 'succeeded' }]],
      ]),
    );
  });

  it('says which step is not allowed, out of order, or where the story ends elsewhere than the file', async () => {
    const forged = ['v-1/a: queued -> running', 'v-1/a: running -> failed', 'v-1/a: running -> succeeded', 'v-1/b: queued -> running', 'v-1/b: running -> queued', 'v-1/b: queued -> running', 'v-1/b: running -> succeeded', 'v-1/zz: queued -> running'];
    expect(await verifyRun(input({ subjects: forged }))).toEqual([
      'a: a commit records running -> succeeded while the task was failed',
      'b: running -> queued is not a transition a task can make',
      'zz: transitions committed for a task the run does not have',
    ]);
    expect(await verifyRun(input({ subjects: subjects.filter((s) => !s.startsWith('v-1/b: running')) }))).toEqual(['b: its commits end at running, its file says succeeded']);
  });

  it('finds an output, a result, a state or a commit that does not match', async () => {
    const base = input();
    const changed = [done('a', 'A\n'), done('b', 'b?\n')];
    expect(await verifyRun({ ...base, tasks: changed })).toEqual([
      `b: its output in tracking is blob ${blobId('b?\n').slice(0, 12)}, result.json names ${base.result!.tasks[1]!.output!.slice(0, 12)}`,
      'result.txt is not what reducing tracking\'s outputs gives (first difference on line 2: expected "b?", found "B")',
      "result.json's value is not what reducing tracking's outputs gives",
    ]);
    const result = { ...base.result!, tasks: [{ ...base.result!.tasks[0]!, state: 'failed' }, base.result!.tasks[1]!] };
    expect(await verifyRun({ ...base, result, trackingHasCommit: async () => false, doneHasCommit: async () => false })).toEqual([
      'a: result.json says failed, tracking says succeeded',
      'result.json names tracking commit trk, which the tracking clone does not have',
      'tracking names done commit dn, which the done clone does not have',
    ]);
    expect(await verifyRun({ ...base, result: undefined })).toEqual(['the done repository has no result.json for v-1']);
    expect(await verifyRun({ ...base, run: { ...q.run, state: 'running' }, result: undefined, tasks: base.tasks.map((t) => ({ ...t, state: 'running' })), subjects: subjects.filter((s) => !s.includes('-> succeeded')) })).toEqual(['v-1 has not finished (running): no result to check']);
  });
});

describe('verify, more', () => {
  it('says when result.json lists other tasks, and leaves outputs it does not name alone', async () => {
    const base = input();
    const result = { ...base.result!, tasks: [{ ...base.result!.tasks[0]!, output: undefined }] };
    expect(await verifyRun({ ...base, result })).toEqual(['result.json lists tasks a; tracking has a, b']);
  });

  it('does not reduce again what failed past the result cap, whose outputs were let go', async () => {
    const base = input();
    const result = { ...base.result!, state: 'failed' as const, error: "the tasks' stdout comes to 9 bytes, past the result cap of 1 bytes (GITJOBS_RESULT_CAP)" };
    expect(await verifyRun({ ...base, result, resultText: 'FAILED: …\n' })).toEqual([]);
  });

  it('checks only what it can read: a task file with no output read is not compared', async () => {
    const base = input();
    const tasks = base.tasks.map((t) => (t.id === 'b' ? { ...t, stdout: undefined } : t));
    expect(await verifyRun({ ...base, tasks })).toEqual([]);
  });
});

describe('verify, files', () => {
  const files = { commit: 'dn0', dir: 'runs/x/y/v-1/files/a', entries: [{ path: 'out.txt', blob: blobId('o\n'), bytes: 2 }] };
  const withFiles = (blobs: Record<string, string>, recorded = files) => {
    const tasks = [{ ...done('a', 'A\n'), files: recorded }, done('b', 'B\n')];
    const c = completeRun({ ...q.run, state: 'running' }, tasks, 'trk', 'f');
    return input({ tasks, result: c.result, run: { ...c.run, doneCommit: 'dn' }, doneBlob: async (path) => blobs[path] });
  };

  it('finds each file result.json lists in the run folder in done, as that blob', async () => {
    const dir = (await import('../../src/core/files.js')).filesDir(q.run, 'a');
    expect(await verifyRun(withFiles({ [`${dir}/out.txt`]: blobId('o\n') }))).toEqual([]);
    expect(await verifyRun(withFiles({ [`${dir}/out.txt`]: blobId('changed\n') }))).toEqual([`a: ${dir}/out.txt in done is blob ${blobId('changed\n').slice(0, 12)}, result.json names ${blobId('o\n').slice(0, 12)}`]);
    expect(await verifyRun(withFiles({}))).toEqual([`a: ${dir}/out.txt in done is missing, result.json names ${blobId('o\n').slice(0, 12)}`]);
  });

  it('finds a result.json whose files are not the ones tracking recorded', async () => {
    const dir = (await import('../../src/core/files.js')).filesDir(q.run, 'a');
    const good = withFiles({ [`${dir}/out.txt`]: blobId('o\n') });
    const tasks = [{ ...good.tasks[0]!, files: { ...files, entries: [{ path: 'out.txt', blob: blobId('x\n'), bytes: 2 }] } }, good.tasks[1]!];
    expect(await verifyRun({ ...good, tasks })).toContainEqual(`a: result.json lists files {"out.txt":"${blobId('o\n')}"}, tracking records {"out.txt":"${blobId('x\n')}"}`);
  });
});
