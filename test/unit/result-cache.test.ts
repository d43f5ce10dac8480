/**
 * The result cache on in-memory doubles: a task with `"cache": true` whose
 * key matches an earlier success runs nothing and is recorded as succeeded
 * from the cache, naming where its result came from; anything in the key
 * that changes (command, worker folder, limits) misses; failures are never
 * reused; `Gitjobs-Cache: off` bypasses it; the index is read back from
 * tracking alone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runIdFor } from '../../src/core/ids.js';
import { runPaths } from '../../src/core/layout.js';
import { ResultCache } from '../../src/core/result-cache.js';
import { repoTree } from '../../src/core/run-reader.js';
import { NO_CACHE_TRAILER } from '../../src/core/cache-key.js';
import { finishedRun, harness, pushedRun, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const finished = (runId: string) => finishedRun(h, runId);

const pushed = (name: string, project: object, message?: string) => pushedRun(h, name, project, message);

const ran = () => h.executor.started.map((r) => `${r.env?.GITJOBS_RUN?.split('-')[0]}/${r.env?.GITJOBS_TASK}`);

describe('the result cache', () => {
  it('a project pushed again under another name runs nothing: each task is recorded from the cache, naming the first run', async () => {
    h = await harness();
    const project = { cache: true, tasks: [{ id: 'a', run: 'echo A' }, { id: 'b', run: 'echo B' }] };
    const first = await pushed('one', project);
    expect(ran().sort()).toEqual(['one/a', 'one/b']);
    const second = await pushed('two', project);
    expect(ran()).toHaveLength(2);
    const view = (await h.run(second))!;
    expect(view.run.state).toBe('succeeded');
    expect(view.tasks.map((t) => [t.id, t.state, t.cachedFrom?.run, t.cachedFrom?.task])).toEqual([
      ['a', 'succeeded', first, 'a'],
      ['b', 'succeeded', first, 'b'],
    ]);
    const keys = (await h.run(first))!.tasks.map((t) => t.cacheKey);
    expect(keys.every((k) => /^[0-9a-f]{64}$/.test(k!))).toBe(true);
    expect(view.tasks.map((t) => t.cacheKey)).toEqual(keys);
    const subjects = await h.subjects(second);
    expect(subjects.find((s) => s.startsWith(`${second}/a:`))).toMatch(new RegExp(`^${second}/a: queued -> succeeded \\(from cache: ${first}/a at [0-9a-f]{7}, ran \\S+ there, key ${keys[0]!.slice(0, 12)}, no container\\)$`));
    expect(subjects.some((s) => s.includes('-> running'))).toBe(false);
    // The commit names the whole key and where the result is recorded.
    let message = '';
    for await (const c of h.store.history('tache_suivi', (await h.store.head('tache_suivi'))!)) if (c.message.startsWith(`${second}/a: queued -> succeeded`)) message = c.message;
    expect(message).toMatch(new RegExp(`^Cache-Key: ${keys[0]}$`, 'm'));
    expect(message).toMatch(new RegExp(`^Cached-From: ${first}/a@[0-9a-f]{40}$`, 'm'));
    const result = await h.store.readFile('tache_termine', (await h.store.head('tache_termine'))!, runPaths(view.run).resultText);
    expect(result).toBe('A\nB\n');
    expect((await h.result(second))!.tasks.map((t) => t.cachedFrom?.run)).toEqual([first, first]);
    // A hit is itself a result a third run can point at: it names the run that computed it.
    const third = await pushed('three', project);
    expect((await h.run(third))!.tasks.map((t) => t.cachedFrom?.run)).toEqual([first, first]);
    expect(ran()).toHaveLength(2);
  });

  it('misses when the command, the worker folder or the limits change, and never reuses a failure', async () => {
    let failing = true;
    h = await harness({ programs: { flaky: () => (failing ? 1 : 0) } });
    await pushed('p1', { cache: true, tasks: [{ id: 'a', run: 'echo A' }, { id: 'f', run: 'flaky' }] });
    expect((await h.run(runIdFor('projects/p1.json', (await h.store.head('tache_a_faire'))!)))!.tasks.find((t) => t.id === 'f')!.cacheKey).toBeUndefined();
    failing = false;
    // The failure is not reused: `f` runs again; `a` comes from the cache.
    await pushed('p2', { cache: true, tasks: [{ id: 'a', run: 'echo A' }, { id: 'f', run: 'flaky' }] });
    expect([...ran().slice(0, 2).sort(), ...ran().slice(2)]).toEqual(['p1/a', 'p1/f', 'p2/f']);
    // Another command.
    await pushed('p3', { cache: true, tasks: [{ id: 'a', run: 'echo A2' }] });
    expect(ran().at(-1)).toBe('p3/a');
    // Other limits.
    await pushed('p4', { cache: true, limits: { pids: 64 }, tasks: [{ id: 'a', run: 'echo A' }] });
    expect(ran().at(-1)).toBe('p4/a');
    // A change to the worker's folder in the config repository.
    await h.store.commit('config', { changes: [{ path: 'workers/default/Dockerfile', content: 'FROM base\nRUN true\n' }], message: 'Change the worker\n' });
    await pushed('p5', { cache: true, tasks: [{ id: 'a', run: 'echo A' }] });
    expect(ran().at(-1)).toBe('p5/a');
    // A config commit that does not touch the folder keeps the key.
    await h.store.commit('config', { changes: [{ path: 'README.md', content: 'docs\n' }], message: 'Docs\n' });
    const n = ran().length;
    await pushed('p6', { cache: true, tasks: [{ id: 'a', run: 'echo A' }] });
    expect(ran()).toHaveLength(n);
  });

  it('runs what does not ask for it, and what a commit says to run without it', async () => {
    h = await harness();
    await pushed('c1', { cache: true, tasks: [{ id: 'a', run: 'echo A' }, { id: 'b', run: 'echo B', cache: false }] });
    await pushed('c2', { cache: true, tasks: [{ id: 'a', run: 'echo A' }, { id: 'b', run: 'echo B', cache: false }] });
    expect([...ran().slice(0, 2).sort(), ...ran().slice(2)]).toEqual(['c1/a', 'c1/b', 'c2/b']);
    // Without "cache", nothing is taken from it.
    await pushed('c3', { tasks: [{ id: 'a', run: 'echo A' }] });
    expect(ran().at(-1)).toBe('c3/a');
    // `gitjobs submit --no-cache` writes the trailer: the task runs, and its key is still recorded.
    const id = await pushed('c4', { cache: true, tasks: [{ id: 'a', run: 'echo A' }] }, `Submit projects/c4.json\n\n${NO_CACHE_TRAILER}\n`);
    expect(ran().at(-1)).toBe('c4/a');
    const view = (await h.run(id))!;
    expect(view.run.noCache).toBe(true);
    expect(view.tasks[0]!.cacheKey).toMatch(/^[0-9a-f]{64}$/);
    // And a re-run can bypass it too.
    expect(await h.dispatcher.rerun(id, { noCache: true })).toMatchObject({ outcome: 'queued', tasks: 1 });
    await finished(`${id}.r1`);
    expect(ran().at(-1)).toBe('c4/a');
    expect((await h.run(`${id}.r1`))!.tasks[0]!.cachedFrom).toBeUndefined();
  });

  it('is read back from tracking alone', async () => {
    h = await harness();
    const first = await pushed('r1', { cache: true, tasks: [{ id: 'a', run: 'echo A' }, { id: 'b', run: 'exit 2' }] });
    const fresh = new ResultCache({ source: repoTree(h.store, 'tache_suivi'), head: () => h.store.head('tache_suivi') });
    await fresh.ready();
    expect(fresh.size).toBe(1);
    const [entry] = fresh.candidates('default', ['sh', '-c', 'echo A'], 10 * 60_000);
    expect(entry).toMatchObject({ run: first, task: 'a', key: (await h.run(first))!.tasks[0]!.cacheKey });
    expect(fresh.candidates('default', ['sh', '-c', 'exit 2'], 10 * 60_000)).toEqual([]);

    // Two results for one command with different keys (another worker image): read back newest first.
    await h.clock.advance(60_000);
    await h.store.commit('config', { changes: [{ path: 'workers/default/Dockerfile', content: 'FROM base\nRUN true\n' }], message: 'Another image\n' });
    const second = await pushed('r2', { cache: true, tasks: [{ id: 'a', run: 'echo A' }] });
    const again = new ResultCache({ source: repoTree(h.store, 'tache_suivi'), head: () => h.store.head('tache_suivi') });
    await again.ready();
    expect(again.candidates('default', ['sh', '-c', 'echo A'], 10 * 60_000).map((e) => e.run)).toEqual([second, first]);
  });
});
