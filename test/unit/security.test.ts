/**
 * Security rules of the flow stages, on in-memory doubles: replayed pushes,
 * pushes of too many files, and reports that cannot be applied.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ZERO_SHA } from '../../src/core/events.js';
import { runIdFor } from '../../src/core/ids.js';
import { Dispatcher } from '../../src/dispatcher/dispatcher.js';
import { CONFIG_URL, harness, until, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const project = (...ids: string[]) => JSON.stringify({ tasks: ids.map((id) => ({ id, run: `echo ${id}` })) });
const queuedSubjects = async () => (await h.store.subjects('tache_suivi')).filter((s) => / queued \(| rejected \(/.test(s));

describe('a replayed push', () => {
  it('is dispatched once per (repository, before, after), whatever its source or delivery', async () => {
    h = await harness({ workers: 0 });
    const before = (await h.store.head('tache_a_faire'))!;
    const after = await h.push({ 'projects/p.json': project('a') });
    const again = { repo: 'tache_a_faire', ref: 'refs/heads/main', before, after, source: 'replay' };
    expect(await h.dispatcher.handlePush(again)).toEqual([]);
    expect(h.log.lines.some((l) => l.msg === 'push already dispatched; ignored' && l.source === 'replay')).toBe(true);
    expect(h.queue.peek('todo')).toHaveLength(1);
  });

  it('with `before` all zeros starts from the last commit dispatched in its history, also after a restart', async () => {
    h = await harness({ workers: 0 });
    const first = await h.push({ 'projects/p.json': project('a') });
    const second = await h.push({ 'projects/q.json': project('b') });
    const readme = await h.push({ 'README.md': 'changed\n' });
    expect(await queuedSubjects()).toHaveLength(2);
    // A dispatcher that knows nothing of what was dispatched (gitjobs restarted), replays from nothing.
    const fresh = () => new Dispatcher({ store: h.store, queue: h.queue, settings: h.settings, configUrl: CONFIG_URL, log: h.log, clock: h.clock });
    for (const after of [first, second, readme]) {
      expect(await fresh().handlePush({ repo: 'tache_a_faire', ref: 'refs/heads/main', before: ZERO_SHA, after, source: 'replayed delivery' })).toEqual([]);
    }
    expect(await queuedSubjects()).toEqual([`${runIdFor('projects/p.json', first)}: queued (1 task from projects/p.json)`, `${runIdFor('projects/q.json', second)}: queued (1 task from projects/q.json)`]);
    expect(h.queue.peek('todo')).toHaveLength(2);
    // What was not dispatched yet still is: a new file in a push seen first as a new branch.
    const third = await h.store.commit('tache_a_faire', { changes: [{ path: 'projects/r.json', content: project('c') }], message: 'r\n' });
    const outcomes = await fresh().handlePush({ repo: 'tache_a_faire', ref: 'refs/heads/main', before: ZERO_SHA, after: third, source: 'new branch' });
    expect(outcomes.map((o) => [o.file, o.outcome])).toEqual([['projects/r.json', 'queued']]);
  });

  it('with `before` all zeros and nothing dispatched yet runs every project file there is', async () => {
    h = await harness({ workers: 0 });
    const after = await h.store.commit('tache_a_faire', { changes: [{ path: 'projects/p.json', content: project('a') }, { path: 'projects/q.json', content: project('b') }], message: 'both\n' });
    const outcomes = await h.dispatcher.handlePush({ repo: 'tache_a_faire', ref: 'refs/heads/main', before: ZERO_SHA, after, source: 'first push' });
    expect(outcomes.map((o) => o.outcome)).toEqual(['queued', 'queued']);
  });
});

describe('a push of too many project files', () => {
  it('is one rejected record naming the rule, and none of its files run', async () => {
    h = await harness({ workers: 0 });
    const files = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`projects/p${i}.json`, project('a')]));
    const commit = await h.push(files);
    const runId = runIdFor('projects/', commit);
    const view = (await h.run(runId))!;
    expect(view.run.state).toBe('rejected');
    expect(view.run.error).toBe('projects/: $: the push adds or changes 101 project files; at most 100 may come in one push (GITJOBS_PUSH_FILES), so none of them run. Push them in smaller batches.');
    expect(await queuedSubjects()).toEqual([`${runId}: rejected (1 problem in projects/)`]);
    expect(h.queue.peek('todo')).toHaveLength(0);
    expect(await h.store.subjects('tache_suivi')).toHaveLength(2);
  });

  it('is settable, and a push at the limit runs every file', async () => {
    h = await harness({ workers: 0, settings: { pushFiles: 3 } });
    await h.push({ 'projects/a.json': project('a'), 'projects/b.json': project('b'), 'projects/c.json': project('c') });
    expect(h.queue.peek('todo')).toHaveLength(3);
    const commit = await h.push({ 'projects/d.json': project('d'), 'projects/e.json': project('e'), 'projects/f.json': project('f'), 'projects/g.json': project('g') });
    expect((await h.run(runIdFor('projects/', commit)))!.run.error).toContain('at most 3 may come in one push');
    expect(h.queue.peek('todo')).toHaveLength(3);
  });
});

describe('a report that cannot be applied', () => {
  it('ends its attempt failed with the error recorded, and the run finishes, instead of coming back for ever', async () => {
    h = await harness();
    // Applying the task's outcome fails once, as a result too big for memory would (RangeError).
    const stage = h.store.stage.bind(h.store);
    let thrown = 0;
    h.store.stage = async (repo, options) => {
      if (repo === 'tache_suivi' && / running -> succeeded/.test(options.message) && thrown++ === 0) throw new RangeError('Invalid string length');
      return stage(repo, options);
    };
    const commit = await h.push({ 'projects/p.json': project('a') });
    const runId = runIdFor('projects/p.json', commit);
    const view = (await until(h, 'run finished', async () => ((await h.run(runId))?.run.doneCommit ? h.run(runId) : undefined), { advanceMs: 100, steps: 500 }))!;
    expect(thrown).toBe(1);
    expect(view.run.state).toBe('failed');
    expect(view.tasks[0]).toMatchObject({ state: 'failed', error: "gitjobs could not apply this attempt's finished report: Invalid string length" });
    expect(h.log.lines.some((l) => l.level === 'error' && l.msg === 'could not apply a report; its attempt ends failed with the error')).toBe(true);
    // The DONE message was settled: nothing waits to be delivered again.
    expect(h.queue.peek('done')).toHaveLength(0);
  });
});
