/**
 * Dependencies on in-memory doubles: a task with `needs` waits until what
 * it needs has succeeded, is skipped (and what needs it, in turn) when one
 * of them does not, and `fail_fast` cancels the rest of a run at the first
 * failure. Each decision is a commit of its own.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runIdFor } from '../../src/core/ids.js';
import { runPaths } from '../../src/core/layout.js';
import { finishedRun, harness, pushedRun, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const finished = (runId: string) => finishedRun(h, runId);

const pushed = (name: string, project: object) => pushedRun(h, name, project);

const states = async (id: string) => Object.fromEntries((await h.run(id))!.tasks.map((t) => [t.id, t.state]));

describe('needs', () => {
  it('three levels: a failure skips what needs it, and what needs that, while the rest runs on', async () => {
    let fixed = false;
    h = await harness({ programs: { b: (_args, io) => (fixed ? (io.out('B\n'), 0) : 1) } });
    const project = {
      tasks: [
        { id: 'a', run: 'echo A' },
        { id: 'b', run: 'b' },
        { id: 'c', run: 'echo C', needs: ['a'] },
        { id: 'd', run: 'echo D', needs: ['b'] },
        { id: 'e', run: 'echo E', needs: ['c', 'd'] },
        { id: 'f', run: 'echo F', needs: ['c'] },
      ],
    };
    const id = await pushed('dag', project);
    expect(await states(id)).toEqual({ a: 'succeeded', b: 'failed', c: 'succeeded', d: 'skipped', e: 'skipped', f: 'succeeded' });
    const subjects = await h.subjects(id);
    expect(subjects).toContain(`${id}/c: waiting -> queued (needs met: a)`);
    expect(subjects).toContain(`${id}/f: waiting -> queued (needs met: c)`);
    expect(subjects).toContain(`${id}/d: waiting -> skipped (needs b, which failed)`);
    expect(subjects).toContain(`${id}/e: waiting -> skipped (needs d, which was skipped)`);
    // c ran only after a succeeded, f only after c.
    const at = (s: string) => subjects.findIndex((x) => x.startsWith(s));
    expect(at(`${id}/a: running -> succeeded`)).toBeLessThan(at(`${id}/c: waiting -> queued`));
    expect(at(`${id}/c: running -> succeeded`)).toBeLessThan(at(`${id}/f: waiting -> queued`));
    expect(h.executor.started.map((r) => r.env?.GITJOBS_TASK).sort()).toEqual(['a', 'b', 'c', 'f']);
    const view = (await h.run(id))!;
    expect(view.run.state).toBe('failed');
    expect(view.run.error).toBe('1 of 6 tasks failed: b (exit 1); 2 skipped (d, e)');
    expect(view.tasks.find((t) => t.id === 'e')!.error).toBe('skipped: needs d, which was skipped');

    // A re-run of the failed part runs b and what was skipped; what succeeded is reused, and d waits for b again.
    fixed = true;
    expect(await h.dispatcher.rerun(id, { failed: true })).toMatchObject({ outcome: 'queued', tasks: 1, reused: 3 });
    const again = (await finished(`${id}.r1`))!;
    expect(again.run.state).toBe('succeeded');
    expect(Object.fromEntries(again.tasks.map((t) => [t.id, t.reusedFrom ? 'reused' : t.state]))).toEqual({ a: 'reused', b: 'succeeded', c: 'reused', d: 'succeeded', e: 'succeeded', f: 'reused' });
    const result = await h.store.readFile('tache_termine', (await h.store.head('tache_termine'))!, runPaths(again.run).resultText);
    expect(result).toBe('A\nB\nC\nD\nE\nF\n');
  });

  it('a matrix named in needs stands for all its instances', async () => {
    h = await harness();
    const id = await pushed('sweep', {
      reduce: 'lines',
      tasks: [
        { id: 'train-{seed}', run: 'echo t{seed}', matrix: { seed: [1, 2, 3] } },
        { id: 'summarise', run: 'echo done', needs: ['train-{seed}'] },
      ],
    });
    const view = (await h.run(id))!;
    expect(view.tasks.find((t) => t.id === 'summarise')!.needs).toEqual(['train-1', 'train-2', 'train-3']);
    const subjects = await h.subjects(id);
    const released = subjects.findIndex((s) => s.startsWith(`${id}/summarise: waiting -> queued`));
    for (const s of [1, 2, 3]) expect(subjects.findIndex((x) => x.startsWith(`${id}/train-${s}: running -> succeeded`))).toBeLessThan(released);
    expect(view.run.state).toBe('succeeded');
  });

  it('fail_fast: the first failure for good cancels the rest of the run, which fails naming it', async () => {
    h = await harness({ programs: { slow: () => new Promise((r) => setTimeout(() => r(0), 10)) } });
    const id = await pushed('ff', {
      fail_fast: true,
      retries: 1,
      tasks: [
        { id: 'bad', run: 'exit 3' },
        { id: 'later', run: 'echo L', needs: ['bad'] },
        { id: 'other', run: 'sleep 60' },
      ],
    });
    const view = (await h.run(id))!;
    expect(Object.fromEntries(view.tasks.map((t) => [t.id, t.state]))).toEqual({ bad: 'failed', later: 'cancelled', other: 'cancelled' });
    // Its retry ran first: fail_fast waits for a failure for good.
    expect(view.tasks[0]!.attempts).toBe(2);
    expect(view.run.state).toBe('failed');
    expect(view.run.error).toBe('1 of 3 tasks failed: bad (exit 3); fail_fast cancelled 2');
    expect(await h.subjects(id)).toContain(`${id}/later: waiting -> cancelled (fail_fast: bad failed)`);
  });

  it('parallel holds a run back to N tasks queued or running, while another run still gets a worker', async () => {
    h = await harness({ concurrency: 2 });
    const bigFile = 'projects/big.json';
    const big = runIdFor(bigFile, await h.push({ [bigFile]: JSON.stringify({ parallel: 1, tasks: [1, 2, 3, 4].map((i) => ({ id: `s${i}`, run: 'sleep 1' })) }) }));
    const smallFile = 'projects/small.json';
    const small = runIdFor(smallFile, await h.push({ [smallFile]: JSON.stringify({ tasks: [{ id: 'quick', run: 'sleep 1' }] }) }));
    await finished(big);
    const subjects = await h.subjects(big);
    expect((await h.run(big))!.tasks.map((t) => t.state)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    expect(subjects).toContain(`${big}/s2: waiting -> queued (a slot of parallel 1)`);
    // One at a time: each task is queued only once the one before it has finished.
    const at = (prefix: string) => subjects.findIndex((x) => x.startsWith(prefix));
    for (const i of [2, 3, 4]) expect(at(`${big}/s${i - 1}: running -> succeeded`)).toBeLessThan(at(`${big}/s${i}: waiting -> queued`));
    // The small run did not wait behind the big one: it was done before the big one's second task started.
    const all = await h.store.subjects('tache_suivi');
    expect(all.findIndex((x) => x.startsWith(`${small}/quick: running -> succeeded`))).toBeLessThan(all.findIndex((x) => x.startsWith(`${big}/s2: queued -> running`)));
    expect((await h.run(big))!.run.parallel).toBe(1);
  });

  it("\"result\" makes one task's stdout the run's result, instead of a reducer's", async () => {
    h = await harness();
    const id = await pushed('own', { result: 'summarise', tasks: [{ id: 'part-{i}', run: 'echo {i}', matrix: { i: [1, 2] } }, { id: 'summarise', run: 'echo three', needs: ['part-{i}'] }] });
    const view = (await h.run(id))!;
    expect(view.run.state).toBe('succeeded');
    const result = await h.store.readFile('tache_termine', (await h.store.head('tache_termine'))!, runPaths(view.run).resultText);
    expect(result).toBe('three\n');
    expect(await h.result(id)).toMatchObject({ resultTask: 'summarise', value: 'three\n' });
  });
});
