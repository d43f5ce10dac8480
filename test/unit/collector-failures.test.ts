/**
 * When the collector itself fails: a report it cannot apply ends its
 * attempt failed with the error; a tracking that keeps moving gives the
 * message back; a lost worker is recorded with what tracking knows of it,
 * and not at all when another collector saw the attempt end.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../src/core/channels.js';
import { ConflictError } from '../../src/core/errors.js';
import { runIdFor } from '../../src/core/ids.js';
import { runPaths } from '../../src/core/layout.js';
import type { CommitOptions } from '../../src/core/ports.js';
import { harness, until, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const tasks = (runs: Record<string, string>, extra: object = {}) => JSON.stringify({ ...extra, tasks: Object.entries(runs).map(([id, run]) => ({ id, run })) });
const at = () => new Date(h.clock.now()).toISOString();

async function oneRun(extra: object = {}) {
  h = await harness({ workers: 0, settings: { consumerTimeoutMs: 10_000, heartbeatMs: 1000 } });
  const commit = await h.push({ 'projects/t.json': tasks({ a: 'true' }, extra) });
  h.queue.purge('todo');
  return runIdFor('projects/t.json', commit);
}

/** Makes the store's staging throw `err` for commits whose subject matches, `times` times. */
function failStaging(match: RegExp, err: () => Error, times = 1) {
  const stage = h.store.stage.bind(h.store);
  let left = times;
  h.store.stage = async (repo: string, options: CommitOptions) => {
    if (left > 0 && match.test(options.message)) {
      left--;
      throw err();
    }
    return stage(repo, options);
  };
}

describe('a report the collector cannot apply', () => {
  it('ends its attempt failed, naming the error, keeping the worker and image the report named', async () => {
    const id = await oneRun();
    const base = { v: 1 as const, run: id, task: 'a', attempt: 1, host: 'h1', worker: 'h1:1', image: 'sha256:img', at: at() };
    await h.collector.report({ ...base, kind: 'started' });
    failStaging(/running -> succeeded/, () => new Error('disk full'));
    await h.collector.report({ ...base, kind: 'finished', exitCode: 0, durationMs: 1234, timedOut: false, stdout: 'a\n', output: 'a\n', truncated: false });
    const error = "gitjobs could not apply this attempt's finished report: disk full";
    const view = (await h.run(id))!;
    expect(view.tasks[0]).toMatchObject({ state: 'failed', exitCode: null, durationMs: 1234, timedOut: false, outputTruncated: false, error, worker: { host: 'h1', image: 'sha256:img', id: 'h1:1' } });
    const head = (await h.store.head('tache_suivi'))!;
    expect(await h.store.readFile('tache_suivi', head, runPaths(view.run).logFile('a'))).toBe(`${error}\n`);
    expect(await h.store.readFile('tache_suivi', head, runPaths(view.run).stdoutFile('a'))).toBe('');
    expect(h.log.lines.find((l) => l.level === 'error')).toMatchObject({ msg: 'could not apply a report; its attempt ends failed with the error', err: 'disk full', kind: 'finished', run: id, task: 'a', attempt: 1 });
  });

  it('of a start, names it, with no duration and the image the report named', async () => {
    const id = await oneRun();
    failStaging(/queued -> running/, () => new Error('boom'));
    await h.collector.report({ v: 1, kind: 'started', run: id, task: 'a', attempt: 1, host: 'h2', image: 'img2', at: at() });
    expect((await h.run(id))!.tasks[0]).toMatchObject({ state: 'failed', durationMs: 0, error: "gitjobs could not apply this attempt's started report: boom", worker: { host: 'h2', image: 'img2' } });
  });

  it('changes nothing when the attempt is already over or past', async () => {
    const id = await oneRun({ retries: 1 });
    const base = { v: 1 as const, run: id, task: 'a', host: 'h1', image: 'i', at: at() };
    await h.collector.report({ ...base, attempt: 1, kind: 'finished', exitCode: 1, durationMs: 1, timedOut: false, stdout: '', output: '', truncated: false });
    const before = await h.subjects(id);
    failStaging(/./, () => new Error('late'));
    // Attempt 1 of a task now at attempt 2 (its retry).
    await h.collector.report({ ...base, attempt: 1, kind: 'finished', exitCode: 0, durationMs: 1, timedOut: false, stdout: '', output: '', truncated: false });
    expect(await h.subjects(id)).toEqual(before);
  });

  it('goes back to the queue when tracking keeps moving under every try, after twenty', async () => {
    const id = await oneRun();
    failStaging(/./, () => new ConflictError('tache_suivi', undefined, undefined, 'moved'), 1000);
    const event: TaskEvent = { v: 1, kind: 'started', run: id, task: 'a', attempt: 1, host: 'h1', image: 'i', at: at() };
    await expect(h.collector.report(event)).rejects.toThrow(ConflictError);
    expect(h.log.lines.filter((l) => l.msg === 'tracking moved under us; reading it again')).toHaveLength(19);
    expect(h.log.lines.find((l) => l.msg === 'tracking moved under us; reading it again')).toMatchObject({ level: 'debug', err: 'tache_suivi: moved' });
  });
});

describe('a lost worker', () => {
  async function leased(worker: object | undefined) {
    const id = await oneRun({ timeout: '60s' });
    const v = (await h.run(id))!;
    const record = { ...v.tasks[0]!, state: 'running', attempts: 1, leaseMs: 2000, startedAt: at(), ...(worker ? { worker } : {}) };
    await h.store.commit('tache_suivi', { changes: [{ path: runPaths(v.run).taskFile('a'), content: JSON.stringify(record) }], message: 'running elsewhere\n' });
    await h.collector.recover();
    return id;
  }
  it('is named by its host when tracking has no worker id', async () => {
    const id = await leased({ host: 'far', image: 'img' });
    await h.clock.advance(2500);
    expect((await h.run(id))!.tasks[0]).toMatchObject({ state: 'failed', durationMs: 2000, error: 'worker lost: no heartbeat from far for 2.00s', worker: { host: 'far', image: 'img' } });
    expect((await h.run(id))!.tasks[0]!.worker).not.toHaveProperty('id');
  });
  it('is "its worker", on host and image "unknown", when tracking knows nothing of it', async () => {
    const id = await leased(undefined);
    await h.clock.advance(2500);
    expect((await h.run(id))!.tasks[0]).toMatchObject({ state: 'failed', error: 'worker lost: no heartbeat from its worker for 2.00s', worker: { host: 'unknown', image: 'unknown' } });
    expect(h.log.lines.find((l) => l.msg === 'worker lost: no heartbeat from its worker for 2.00s')).toMatchObject({ level: 'warn', run: id, task: 'a', attempt: 1 });
  });
  it('is not recorded when another collector saw the attempt end', async () => {
    const id = await leased({ host: 'far', image: 'img', id: 'far:1' });
    const v = (await h.run(id))!;
    await h.store.commitAsOther('tache_suivi', { changes: [{ path: runPaths(v.run).taskFile('a'), content: JSON.stringify({ ...v.tasks[0]!, state: 'succeeded', exitCode: 0 }) }], message: 'other collector: succeeded\n' });
    await h.clock.advance(2500);
    expect((await h.run(id))!.tasks[0]!.state).toBe('succeeded');
    expect((await h.subjects(id)).some((s) => s.includes('worker lost'))).toBe(false);
    // It read its stale copy once (saying running), lost the race, read again, and stopped there.
    expect(h.log.lines.filter((l) => l.msg.startsWith('worker lost'))).toHaveLength(1);
  });
  it('is not recorded against a later attempt of the task', async () => {
    const id = await leased({ host: 'far', image: 'img', id: 'far:1' });
    const v = (await h.run(id))!;
    await h.store.commitAsOther('tache_suivi', { changes: [{ path: runPaths(v.run).taskFile('a'), content: JSON.stringify({ ...v.tasks[0]!, state: 'running', attempts: 2, leaseMs: undefined }) }], message: 'other collector: attempt 2 running\n' });
    await h.clock.advance(2500);
    expect((await h.run(id))!.tasks[0]).toMatchObject({ state: 'running', attempts: 2 });
    expect(h.log.lines.filter((l) => l.msg.startsWith('worker lost'))).toHaveLength(1);
  });
});

describe('an attempt recorded running that no worker claims', () => {
  it('is queued again, unless its run was cancelled meanwhile', async () => {
    h = await harness({ workers: 0, settings: { heartbeatMs: 1000 } });
    const commit = await h.push({ 'projects/u.json': tasks({ a: 'true' }), 'projects/c.json': tasks({ b: 'true' }) });
    const [u, c] = ['u', 'c'].map((f) => runIdFor(`projects/${f}.json`, commit)) as [string, string];
    h.queue.purge('todo');
    const running = async (run: string) => {
      const v = (await h.run(run))!;
      return { path: runPaths(v.run).taskFile(v.tasks[0]!.id), content: JSON.stringify({ ...v.tasks[0]!, state: 'running', attempts: 1, worker: { host: 'h', image: 'i', id: 'h:1' } }) };
    };
    await h.store.commit('tache_suivi', { changes: [await running(u), await running(c)], message: 'both running\n' });
    expect((await h.collector.recover()).watched).toBe(2);
    await h.collector.cancel(c, 'not needed');
    await h.clock.advance(3000);
    await until(h, 'a queued again', () => h.queue.peek('todo').length > 0);
    await h.idle();
    expect(h.queue.peek('todo').map((m) => [m.run, m.task, m.attempt])).toEqual([[u, 'a', 1]]);
    expect(h.log.lines.filter((l) => l.msg === 'a running attempt that no worker reports holding; queued again').map((l) => l.task)).toEqual(['a']);
  });
});
