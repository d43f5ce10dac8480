/**
 * `rerun RUN --failed` on in-memory doubles: what succeeded is recorded as
 * reused (one commit each, naming where from) with its output, only the
 * rest is sent to run, and the result is as whole as a full run's.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runIdFor } from '../../src/core/ids.js';
import { runPaths } from '../../src/core/layout.js';
import { finishedRun, harness, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const finished = (runId: string) => finishedRun(h, runId);

describe('rerun --failed', () => {
  it('reuses what succeeded, runs only the rest, and the result is whole', async () => {
    // `fixed` fails until the fix is in (a worker image fixed since, say).
    let fixedYet = false;
    h = await harness({ programs: { fixed: (_args, io) => (fixedYet ? (io.out('B\n'), 0) : 3) } });
    const project = { reduce: 'concat', tasks: [{ id: 'a', run: 'echo A' }, { id: 'b', run: 'fixed' }, { id: 'c', run: 'echo C' }] };
    const commit = await h.push({ 'projects/p.json': JSON.stringify(project) });
    const first = runIdFor('projects/p.json', commit);
    expect((await finished(first))!.run.state).toBe('failed');
    const trackingAt = (await h.store.head('tache_suivi'))!;
    const sent: string[] = [];
    const publish = h.queue.publish.bind(h.queue);
    h.queue.publish = (async (queue: 'todo', message: never) => {
      if (queue === 'todo') sent.push((message as { task: string }).task);
      return publish(queue, message);
    }) as typeof h.queue.publish;
    fixedYet = true;
    expect(await h.dispatcher.rerun(first, { failed: true })).toEqual({ file: 'projects/p.json', run: `${first}.r1`, outcome: 'queued', tasks: 1, reused: 2 });
    const view = (await finished(`${first}.r1`))!;
    expect(sent).toEqual(['b']);
    expect(view.tasks.map((t) => [t.id, t.state, t.attempts])).toEqual([
      ['a', 'succeeded', 0],
      ['b', 'succeeded', 1],
      ['c', 'succeeded', 0],
    ]);
    expect(view.tasks[0]!.reusedFrom).toEqual({ run: first, task: 'a', commit: trackingAt });
    const subjects = await h.subjects(`${first}.r1`);
    expect(subjects).toContainEqual(`${first}.r1/a: queued -> succeeded (reused from ${first}/a at ${trackingAt.slice(0, 7)}, ran 0.00s)`);
    expect(subjects.filter((s) => s.includes('reused from'))).toHaveLength(2);
    expect(subjects.some((s) => s.startsWith(`${first}.r1/a: queued -> running`))).toBe(false);
    const paths = runPaths(view.run);
    const result = await h.store.readFile('tache_termine', (await h.store.head('tache_termine'))!, paths.resultText);
    expect(view.run.state).toBe('succeeded');
    expect(result).toBe('A\nB\nC\n');
    expect((await h.result(`${first}.r1`))!.tasks.map((t) => t.reusedFrom?.run)).toEqual([first, undefined, first]);
    // Nothing failed in the re-run: nothing to re-run of it.
    expect(await h.dispatcher.rerun(`${first}.r1`, { failed: true })).toEqual({ outcome: 'nothing-failed' });
  });

  it('a re-run of a re-run names the run where each result was made', async () => {
    let fixes = 0;
    h = await harness({ programs: { fixedAfter: (args) => (fixes >= Number(args[0]) ? 0 : 1) } });
    const commit = await h.push({ 'projects/q.json': JSON.stringify({ tasks: [{ id: 'a', run: 'true' }, { id: 'b', run: 'fixedAfter 1' }, { id: 'c', run: 'fixedAfter 2' }] }) });
    const first = runIdFor('projects/q.json', commit);
    await finished(first);
    fixes = 1;
    await h.dispatcher.rerun(first, { failed: true });
    expect((await finished(`${first}.r1`))!.tasks.map((t) => t.state)).toEqual(['succeeded', 'succeeded', 'failed']);
    const at = (await h.store.head('tache_suivi'))!;
    fixes = 2;
    expect(await h.dispatcher.rerun(`${first}.r1`, { failed: true })).toMatchObject({ run: `${first}.r2`, tasks: 1, reused: 2 });
    const view = (await finished(`${first}.r2`))!;
    expect(view.run.state).toBe('succeeded');
    expect(view.tasks.map((t) => t.reusedFrom && `${t.reusedFrom.run}/${t.reusedFrom.task}`)).toEqual([`${first}/a`, `${first}.r1/b`, undefined]);
    expect(view.tasks[1]!.reusedFrom!.commit).toBe(at);
  });

  it('refuses when nothing failed', async () => {
    h = await harness();
    const commit = await h.push({ 'projects/ok.json': JSON.stringify({ tasks: [{ id: 'a', run: 'true' }] }) });
    const id = runIdFor('projects/ok.json', commit);
    await finished(id);
    expect(await h.dispatcher.rerun(id, { failed: true })).toEqual({ outcome: 'nothing-failed' });
  });
});
