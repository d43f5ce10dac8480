/**
 * Which files a push runs, whatever order its deliveries come in: every
 * project file changed in the todo history runs once, never twice, and a
 * delivery replayed from nothing runs nothing already run.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ZERO_SHA } from '../../src/core/events.js';
import { Dispatcher } from '../../src/dispatcher/dispatcher.js';
import { harness, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const project = (id: string) => JSON.stringify({ tasks: [{ id, run: 'true' }] });
const main = 'refs/heads/main';
/** Commits without telling the dispatcher, as a forge does before its webhook arrives. */
const commit = (files: Record<string, string | null>) => h.store.commit('tache_a_faire', { changes: Object.entries(files).map(([path, content]) => ({ path, content })), message: 'Push\n' });
const deliver = (before: string, after: string, source = 'webhook') => h.dispatcher.handlePush({ repo: 'tache_a_faire', ref: main, before, after, source });
const queuedFiles = async () => (await h.store.subjects('tache_suivi')).filter((s) => s.includes(': queued (')).map((s) => /from (\S+)\)/.exec(s)![1]).sort();

describe('push ranges', () => {
  it('run the files of a push whose delivery came before the one of the push it follows, and the late one runs only its own', async () => {
    h = await harness({ workers: 0 });
    const c0 = (await h.store.head('tache_a_faire'))!;
    const c1 = await commit({ 'projects/one.json': project('a') });
    const c2 = await commit({ 'projects/two.json': project('b') });
    const c3 = await commit({ 'projects/three.json': project('c') });
    await deliver(c0, c1);
    // c2 -> c3 arrives before c1 -> c2: it starts from c1, the last dispatched, so two.json runs too.
    const outcomes = await deliver(c2, c3);
    expect(outcomes.map((o) => o.file).sort()).toEqual(['projects/three.json', 'projects/two.json']);
    // The late delivery is covered.
    expect(await deliver(c1, c2)).toEqual([]);
    expect(h.log.lines.find((l) => l.msg === 'push already covered by a later dispatch; ignored')).toMatchObject({ after: c2, dispatched: c3, source: 'webhook' });
    expect(await queuedFiles()).toEqual(['projects/one.json', 'projects/three.json', 'projects/two.json']);
  });

  it('start an overlapping range where the last dispatch ended, and a force-pushed history from its own before', async () => {
    h = await harness({ workers: 0 });
    const c0 = (await h.store.head('tache_a_faire'))!;
    const c1 = await commit({ 'projects/one.json': project('a') });
    const c2 = await commit({ 'projects/two.json': project('b') });
    await deliver(c0, c2);
    const c3 = await commit({ 'projects/three.json': project('c'), 'projects/one.json': project('a2') });
    // A range from c1: only what changed after c2 runs.
    expect((await deliver(c1, c3)).map((o) => o.file).sort()).toEqual(['projects/one.json', 'projects/three.json']);
    expect(await queuedFiles()).toEqual(['projects/one.json', 'projects/one.json', 'projects/three.json', 'projects/two.json']);
    // The same range again: already dispatched, by its key.
    expect(await deliver(c1, c3)).toEqual([]);
    expect(h.log.lines.some((l) => l.msg === 'push already dispatched; ignored' && l.after === c3)).toBe(true);
    void c2;
  });

  it('run nothing already run when a delivery says it starts from nothing, even in a new dispatcher', async () => {
    h = await harness({ workers: 0 });
    const c1 = await commit({ 'projects/one.json': project('a') });
    await deliver(ZERO_SHA, c1);
    expect(await queuedFiles()).toEqual(['projects/one.json']);
    const c2 = await commit({ 'projects/two.json': project('b') });
    // Replayed from nothing: only c2's file, found from the last dispatched commit.
    expect((await deliver(ZERO_SHA, c2)).map((o) => o.file)).toEqual(['projects/two.json']);
    // A dispatcher started afresh learns from tracking's Todo-Commit trailers where it got to.
    const fresh = new Dispatcher({ store: h.store, queue: h.queue, settings: h.settings, configUrl: 'memory://config.git', log: h.log, clock: h.clock });
    const c3 = await commit({ 'projects/three.json': project('c') });
    expect((await fresh.handlePush({ repo: 'tache_a_faire', ref: main, before: ZERO_SHA, after: c3, source: 'poller' })).map((o) => o.file)).toEqual(['projects/three.json']);
    expect(await queuedFiles()).toEqual(['projects/one.json', 'projects/three.json', 'projects/two.json']);
  });

  it('run every file of a new history from nothing when tracking has recorded no dispatch', async () => {
    h = await harness({ workers: 0 });
    const c1 = await commit({ 'projects/one.json': project('a'), 'projects/two.json': project('b'), 'notes.txt': 'x' });
    expect((await deliver(ZERO_SHA, c1)).map((o) => o.file).sort()).toEqual(['projects/one.json', 'projects/two.json']);
  });

  it('cancel only the unfinished runs of the files a push deletes', async () => {
    h = await harness({ workers: 0 });
    const c0 = (await h.store.head('tache_a_faire'))!;
    const c1 = await commit({ 'projects/one.json': project('a'), 'projects/two.json': project('b') });
    await deliver(c0, c1);
    const c2 = await commit({ 'projects/one.json': null });
    await deliver(c1, c2);
    const cancelled = h.log.lines.filter((l) => l.msg === 'project file deleted; cancelling its run');
    expect(cancelled.map((l) => l.file)).toEqual(['projects/one.json']);
    expect(h.log.lines.find((l) => l.msg === 'run cancelled')).toMatchObject({ reason: `projects/one.json deleted in ${c2.slice(0, 7)}`, tasks: 1 });
  });
});

describe('a dispatcher', () => {
  it('cancels nothing when a project file is changed, not deleted: the old run goes on beside the new one', async () => {
    h = await harness({ workers: 0 });
    const c0 = (await h.store.head('tache_a_faire'))!;
    const c1 = await commit({ 'projects/one.json': project('a') });
    await deliver(c0, c1);
    const c2 = await commit({ 'projects/one.json': project('b') });
    expect((await deliver(c1, c2)).map((o) => o.outcome)).toEqual(['queued']);
    expect(h.log.lines.some((l) => l.msg === 'run cancelled' || l.msg === 'project file deleted; cancelling its run')).toBe(false);
  });
  it('without a config listener or a way to cancel, still takes config pushes and deletions', async () => {
    h = await harness({ workers: 0 });
    const bare = new Dispatcher({ store: h.store, queue: h.queue, settings: h.settings, configUrl: 'memory://config.git', log: h.log, clock: h.clock, observer: {} });
    const config = (await h.store.head('config'))!;
    expect(await bare.handlePush({ repo: 'config', ref: main, before: ZERO_SHA, after: config, source: 't' })).toEqual([]);
    const c0 = (await h.store.head('tache_a_faire'))!;
    const c1 = await commit({ 'projects/one.json': project('a'), 'projects/bad.json': '[]' });
    expect((await bare.handlePush({ repo: 'tache_a_faire', ref: main, before: c0, after: c1, source: 't' })).map((o) => o.outcome).sort()).toEqual(['queued', 'rejected']);
    const c2 = await commit({ 'projects/one.json': null });
    expect(await bare.handlePush({ repo: 'tache_a_faire', ref: main, before: c1, after: c2, source: 't' })).toEqual([]);
    expect(h.log.lines.some((l) => l.msg === 'project file deleted; cancelling its run')).toBe(false);
  });
  it('numbers re-runs past the highest one tracking has', async () => {
    h = await harness({ workers: 0 });
    const c0 = (await h.store.head('tache_a_faire'))!;
    const c1 = await commit({ 'projects/one.json': project('a') });
    const [first] = await deliver(c0, c1);
    const id = first!.run!;
    await h.collector.cancel(id, 'x');
    for (const n of [1, 2, 3]) {
      expect(await h.dispatcher.rerun(id)).toMatchObject({ run: `${id}.r${n}`, outcome: 'queued' });
      await h.collector.cancel(`${id}.r${n}`, 'x');
    }
    // A re-run of a re-run counts from the first run.
    expect(await h.dispatcher.rerun(`${id}.r2`)).toMatchObject({ run: `${id}.r4` });
  });
});

describe('a dispatcher’s observer', () => {
  it('hears each run queued and each rejected', async () => {
    h = await harness({ workers: 0 });
    const heard: string[] = [];
    const d = new Dispatcher({ store: h.store, queue: h.queue, settings: h.settings, configUrl: 'memory://config.git', log: h.log, clock: h.clock, observer: { runQueued: (r) => heard.push(`queued ${r.taskCount}`), runRejected: () => heard.push('rejected') } });
    const c0 = (await h.store.head('tache_a_faire'))!;
    const c1 = await commit({ 'projects/one.json': project('a'), 'projects/bad.json': '[]' });
    await d.handlePush({ repo: 'tache_a_faire', ref: main, before: c0, after: c1, source: 't' });
    expect(heard.sort()).toEqual(['queued 1', 'rejected']);
  });
});
