/**
 * Files in and out, on in-memory doubles: what a task leaves under /out is
 * committed to done under its run and named in tracking and result.json; a
 * task that needs it finds it (and its stdout) under /in; the caps hold;
 * re-runs and the result cache bring a task's files along.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runPaths } from '../../src/core/layout.js';
import { filesDir } from '../../src/core/files.js';
import { gitObjectId } from '../../src/core/git-ids.js';
import { finishedRun, harness, pushedRun, until, type Harness } from './harness.js';
import { LARGE_REPORT_BYTES, reportQueue, type TaskEvent, type WorkQueue } from '../../src/core/channels.js';
import { largePrefetch, LARGE_REPORTS_BUDGET } from '../../src/collector/collector.js';
import { DEFAULT_SETTINGS } from '../../src/core/settings.js';
import { runIdFor } from '../../src/core/ids.js';

let h: Harness;
afterEach(async () => h?.stop());

const DONE = 'tache_termine';
const finished = (runId: string) => finishedRun(h, runId);

const pushed = (name: string, project: object) => pushedRun(h, name, project);

const doneFile = async (path: string) => h.store.readFile(DONE, (await h.store.head(DONE))!, path);
const resultOf = async (id: string) => JSON.parse((await doneFile(runPaths((await h.run(id))!.run).resultJson))!) as { state: string; value: unknown; error?: string; tasks: { id: string; files?: Record<string, string> }[] };

describe('files in and out', () => {
  it('committed to done, named by blob id, and given to what needs them under /in', async () => {
    h = await harness();
    const id = await pushed('parts', {
      out: true,
      tasks: [
        { id: 'p{n}', run: 'echo {n}; put part.txt part {n}; put deep/x.txt x', matrix: { n: [1, 2, 3] } },
        { id: 'sum', run: 'sumin; get p2/files/part.txt; get p3/files/deep/x.txt', needs: ['p{n}'], out: false },
      ],
      result: 'sum',
    });
    const view = (await h.run(id))!;
    expect(view.run.state).toBe('succeeded');
    const p2 = view.tasks.find((t) => t.id === 'p2')!;
    expect(p2.files!.dir).toBe(filesDir(view.run, 'p2'));
    expect(p2.files!.entries).toEqual([
      { path: 'deep/x.txt', blob: gitObjectId('blob', 'x\n'), bytes: 2 },
      { path: 'part.txt', blob: gitObjectId('blob', 'part 2\n'), bytes: 7 },
    ]);
    // In done, in the commit tracking names, and in the run's folder.
    expect(await h.store.readFile(DONE, p2.files!.commit, `${p2.files!.dir}/part.txt`)).toBe('part 2\n');
    expect(await doneFile(`${filesDir(view.run, 'p3')}/deep/x.txt`)).toBe('x\n');
    // The dependent read them: its stdout is the run's result.
    expect(await doneFile(runPaths(view.run).resultText)).toBe('6\npart 2\nx\n');
    const result = await resultOf(id);
    expect(result.tasks.find((t) => t.id === 'p1')!.files).toEqual({ 'deep/x.txt': gitObjectId('blob', 'x\n'), 'part.txt': gitObjectId('blob', 'part 1\n') });
    expect(result.tasks.find((t) => t.id === 'sum')!.files).toBeUndefined();
    // The sum task had no /out, and its inputs were laid out as /in shows them.
    const sum = h.executor.started.find((r) => r.env.GITJOBS_TASK === 'sum')!;
    expect(sum.out).toBeUndefined();
    expect(sum.inputs!.map((f) => f.path).sort()).toEqual(['p1/files/deep/x.txt', 'p1/files/part.txt', 'p1/stdout', 'p2/files/deep/x.txt', 'p2/files/part.txt', 'p2/stdout', 'p3/files/deep/x.txt', 'p3/files/part.txt', 'p3/stdout']);
    expect(h.executor.started.find((r) => r.env.GITJOBS_TASK === 'p1')!.out).toEqual({ maxBytes: 64 * 1024 * 1024 });
    // The commits say what they hold.
    const subjects = (await h.store.log(DONE)).map((c) => c.message.split('\n')[0]);
    expect(subjects).toContain(`${id}/p1: 2 files from /out (9 B, attempt 1)`);
    const trackingLog = await h.store.log('tache_suivi');
    expect(trackingLog.find((c) => c.message.startsWith(`${id}/p2: running -> succeeded`))!.message).toContain(`Files-Commit: ${p2.files!.commit}`);
  });

  it('past its cap the task fails saying so, and nothing of it is kept', async () => {
    h = await harness();
    const id = await pushed('capped', { tasks: [{ id: 'big', run: 'put a.txt 0123456789 0123456789', out: 16 }] });
    const view = (await h.run(id))!;
    const big = view.tasks[0]!;
    expect(big.state).toBe('failed');
    expect(big.error).toBe('the task wrote 22 B under /out, past its cap of 16 B');
    expect(big.files).toBeUndefined();
    expect(await doneFile(`${filesDir(view.run, 'big')}/a.txt`)).toBeUndefined();
  });

  it('a failed task leaves no files; its dependents are skipped', async () => {
    h = await harness();
    const id = await pushed('failing', { tasks: [{ id: 'a', run: 'put a.txt A; exit 3', out: true }, { id: 'b', run: 'sumin', needs: ['a'] }] });
    const view = (await h.run(id))!;
    expect(view.tasks.map((t) => [t.id, t.state, t.files])).toEqual([['a', 'failed', undefined], ['b', 'skipped', undefined]]);
    expect(await doneFile(`${filesDir(view.run, 'a')}/a.txt`)).toBeUndefined();
  });

  it('a project caps /out for its tasks; a task may ask for less, never more', async () => {
    h = await harness();
    await pushed('caps', { out: '1k', tasks: [{ id: 'a', run: 'true' }, { id: 'b', run: 'true', out: 100 }, { id: 'c', run: 'true', out: '2k' }, { id: 'd', run: 'true', out: false }] });
    const caps = Object.fromEntries(h.executor.started.map((r) => [r.env.GITJOBS_TASK, r.out?.maxBytes]));
    expect(caps).toEqual({ a: 1024, b: 100, c: 1024, d: undefined });
  });

  it('a re-run of the failed part brings the reused tasks\' files into its own folder', async () => {
    let fixed = false;
    h = await harness({ programs: { flaky: (_args, io) => (fixed ? (io.out('ok\n'), 0) : 1) } });
    const id = await pushed('again', { tasks: [{ id: 'a', run: 'echo 5; put a.txt A', out: true }, { id: 'b', run: 'flaky' }, { id: 'c', run: 'sumin; get a/files/a.txt', needs: ['a', 'b'] }], result: 'c' });
    expect((await h.run(id))!.run.state).toBe('failed');
    fixed = true;
    expect(await h.dispatcher.rerun(id, { failed: true })).toMatchObject({ outcome: 'queued', reused: 1 });
    const again = (await finished(`${id}.r1`))!;
    expect(again.run.state).toBe('succeeded');
    const a = again.tasks.find((t) => t.id === 'a')!;
    expect(a.reusedFrom?.run).toBe(id);
    // Its files are where they were committed; the re-run's folder gets a copy with its result.
    expect(a.files!.dir).toBe(filesDir((await h.run(id))!.run, 'a'));
    expect(await doneFile(`${filesDir(again.run, 'a')}/a.txt`)).toBe('A\n');
    expect(await doneFile(runPaths(again.run).resultText)).toBe('5\nA\n');
    expect((await resultOf(`${id}.r1`)).tasks.find((t) => t.id === 'a')!.files).toEqual({ 'a.txt': gitObjectId('blob', 'A\n') });
  });

  it('inputs past the cap: the dependent fails saying so, without running', async () => {
    h = await harness({ settings: {} });
    const { withInputs } = await import('../../src/core/inputs.js');
    const id = await pushed('inputs', { tasks: [{ id: 'a', run: 'echo 0123456789; put a.txt A', out: true }, { id: 'b', run: 'sumin', needs: ['a'] }] });
    const b = (await h.run(id))!.tasks.find((t) => t.id === 'b')!;
    expect(b.state).toBe('succeeded');
    const message = { v: 1 as const, run: id, task: 'b', attempt: 1, worker: 'default', argv: ['sumin'], timeoutMs: 1000, limits: { memoryBytes: 1, nanoCpus: 1, pids: 1 }, config: { url: '', commit: '' }, todoCommit: '', needs: ['a'] };
    expect((await withInputs(h.store, { tracking: 'tache_suivi', done: DONE }, message, 8)).inputsError).toBe('inputs of b: what it needs comes to more than 8 B, the most a task is given under /in');
    expect((await withInputs(h.store, { tracking: 'tache_suivi', done: DONE }, { ...message, needs: ['zz'] })).inputsError).toBe(`inputs of b: tracking has no task zz in ${id}`);
    const given = await withInputs(h.store, { tracking: 'tache_suivi', done: DONE }, message);
    expect(given.inputs!.map((f) => [f.path, Buffer.from(f.data, 'base64').toString()])).toEqual([['a/stdout', '0123456789\n'], ['a/files/a.txt', 'A\n']]);
  });

  it('the result cache: a hit brings its files along; what a task needs is part of its key, what it ran is not', async () => {
    h = await harness();
    const ran = () => h.executor.started.map((r) => `${r.env.GITJOBS_RUN!.split('-')[0]}/${r.env.GITJOBS_TASK}`);
    const project = (a: string) => ({ cache: true, tasks: [{ id: 'a', run: a, out: true }, { id: 'b', run: 'sumin; get a/files/a.txt', needs: ['a'], out: true }], result: 'b' });
    const one = await pushed('one', project('echo 1; put a.txt A'));
    const two = await pushed('two', project('echo 1; put a.txt A'));
    expect(ran()).toEqual(['one/a', 'one/b']);
    const view = (await h.run(two))!;
    expect(view.tasks.map((t) => t.cachedFrom?.run)).toEqual([one, one]);
    // The files are copied into the run's own folder, and the result is whole.
    expect(await doneFile(`${filesDir(view.run, 'a')}/a.txt`)).toBe('A\n');
    expect(await doneFile(runPaths(view.run).resultText)).toBe('1\nA\n');
    expect((await resultOf(two)).tasks[0]!.files).toEqual({ 'a.txt': gitObjectId('blob', 'A\n') });
    // Another command that leaves the same stdout and files: a runs, b takes its result from the cache.
    const three = await pushed('three', project('echo 1;  put a.txt A'));
    expect(ran().slice(2)).toEqual(['three/a']);
    expect((await h.run(three))!.tasks[1]!.cachedFrom?.run).toBe(one);
    // Another file: both run.
    await pushed('four', project('echo 1; put a.txt Z'));
    expect(ran().slice(3)).toEqual(['four/a', 'four/b']);
  });

  it('files or inputs larger than a message the broker takes fail their task, saying so, and nothing else', async () => {
    h = await harness({ settings: { maxMessageBytes: 8192 } });
    const word = (n: number) => 'x'.repeat(n);
    const id = await pushed('heavy', {
      tasks: [
        // 7,000 bytes are 9,336 in base64: past the limit.
        { id: 'writes', run: `put big.txt ${word(7000)}`, out: true },
        // 3,000 bytes each fit a DONE message; together, as the inputs of one task, they do not.
        { id: 'p1', run: `echo 1; put part.txt ${word(3000)}`, out: true },
        { id: 'p2', run: `echo 1; put part.txt ${word(3000)}`, out: true },
        { id: 'one', run: 'sumin', needs: ['p1'] },
        { id: 'both', run: 'sumin', needs: ['p1', 'p2'] },
      ],
    });
    const by = Object.fromEntries((await h.run(id))!.tasks.map((t) => [t.id, t]));
    expect(by.writes!.state).toBe('failed');
    expect(by.writes!.error).toMatch(/^its files could not be sent to the collector: a DONE message of [\d.]+ KiB is more than the broker takes, 8 KiB \(GITJOBS_MAX_MESSAGE/);
    expect(by.writes!.files).toBeUndefined();
    expect([by.p1!.state, by.p2!.state, by.one!.state]).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(by.both!.state).toBe('failed');
    expect(by.both!.error).toMatch(/^inputs of both: a TODO message of [\d.]+ KiB is more than the broker takes/);
    // It ran nothing: its worker failed it before starting anything.
    expect(h.executor.started.map((r) => r.env.GITJOBS_TASK)).not.toContain('both');
  });
});

describe('large reports', () => {
  /** Which queue each finished report went to, by task. */
  function watchReports(): Map<string, string> {
    const sent = new Map<string, string>();
    const publish = h.queue.publish.bind(h.queue);
    h.queue.publish = (async (queue: WorkQueue, message: unknown) => {
      const e = message as TaskEvent;
      if ((queue === 'done' || queue === 'large') && e.kind === 'finished') sent.set(e.task, queue);
      return publish(queue, message as never);
    }) as typeof h.queue.publish;
    return sent;
  }

  it('go to DONE_LARGE, which the collector takes a few at a time, and land like any other', async () => {
    h = await harness();
    const sent = watchReports();
    const id = await pushed('big', { out: true, tasks: [{ id: 'big', run: `fill big.bin ${LARGE_REPORT_BYTES}` }, { id: 'small', run: 'put s.txt hi' }] });
    const view = (await h.run(id))!;
    expect(view.run.state).toBe('succeeded');
    // Past LARGE_REPORT_BYTES once in base64; the small one stays on DONE.
    expect(Object.fromEntries(sent)).toEqual({ big: 'large', small: 'done' });
    const big = view.tasks.find((t) => t.id === 'big')!;
    expect(big.files!.entries).toEqual([{ path: 'big.bin', blob: gitObjectId('blob', 'x'.repeat(LARGE_REPORT_BYTES)), bytes: LARGE_REPORT_BYTES }]);
    expect(await doneFile(`${filesDir(view.run, 'big')}/big.bin`)).toHaveLength(LARGE_REPORT_BYTES);
    expect(h.queue.depth('large')).toBe(0);
  });

  it('recorded with their start time even when read before their start', async () => {
    h = await harness({ workers: 0 });
    const file = 'projects/early.json';
    const id = runIdFor(file, await h.push({ [file]: JSON.stringify({ tasks: [{ id: 'a', run: 'true' }] }) }));
    await until(h, 'queued', async () => (await h.run(id))?.tasks[0]!.state === 'queued');
    const base = { v: 1 as const, run: id, task: 'a', attempt: 1, host: 'h9', worker: 'h9:1', image: 'memory (unsandboxed)' };
    const startedAt = '2026-01-01T00:00:01.000Z';
    await h.queue.publish('large', { ...base, kind: 'finished', at: '2026-01-01T00:00:09.000Z', startedAt, exitCode: 0, durationMs: 8000, timedOut: false, stdout: 'a\n', output: 'a\n', truncated: false });
    const view = await finishedRun(h, id);
    expect(view.tasks[0]).toMatchObject({ state: 'succeeded', startedAt, finishedAt: '2026-01-01T00:00:09.000Z' });
    // Its `started`, late on DONE, changes nothing.
    await h.queue.publish('done', { ...base, kind: 'started', at: startedAt });
    await h.idle();
    expect((await h.subjects(id)).filter((s) => s.includes('-> running'))).toHaveLength(1);
    expect(h.queue.depth('done')).toBe(0);
  });

  it('are held as many at once as fit in the budget: four of the broker’s largest messages by default', () => {
    expect(largePrefetch(DEFAULT_SETTINGS.maxMessageBytes)).toBe(4);
    expect(largePrefetch(16 * 1024 * 1024)).toBe(32);
    expect(largePrefetch(LARGE_REPORTS_BUDGET * 2)).toBe(1);
    expect(reportQueue({ v: 1, kind: 'started', run: 'r', task: 't', attempt: 1, host: 'h', image: 'i', at: 'x' })).toBe('done');
  });
});
