import { afterEach, describe, expect, it } from 'vitest';
import { runIdFor } from '../../src/core/ids.js';
import { runPaths } from '../../src/core/layout.js';
import { PUSH_BYTES } from '../../src/dispatcher/dispatcher.js';
import { harness, until, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const project = (...ids: string[]) => JSON.stringify({ tasks: ids.map((id) => ({ id, run: `echo ${id}` })) });

describe('dispatcher', () => {
  it('records a pushed project as one queued commit, then publishes one TODO message per task', async () => {
    h = await harness({ workers: 0 });
    const commit = await h.push({ 'projects/p.json': project('a', 'b') });
    const runId = runIdFor('projects/p.json', commit);
    expect(await h.subjects(runId)).toEqual([`${runId}: queued (2 tasks from projects/p.json)`, `${runId}: published (2 TODO messages confirmed by the broker)`]);
    const view = (await h.run(runId))!;
    expect(view.run).toMatchObject({ state: 'queued', todoCommit: commit, file: 'projects/p.json', tasks: ['a', 'b'] });
    expect(view.tasks.map((t) => [t.id, t.state, t.attempts])).toEqual([['a', 'queued', 0], ['b', 'queued', 0]]);
    const todo = h.queue.peek('todo');
    expect(todo.map((m) => [m.task, m.attempt, m.argv])).toEqual([['a', 1, ['sh', '-c', 'echo a']], ['b', 1, ['sh', '-c', 'echo b']]]);
    expect(todo[0]).toMatchObject({ run: runId, worker: 'default', todoCommit: commit, config: { url: 'memory://config.git', commit: await h.store.head('config') }, limits: h.settings.limits });
  });

  it('records an invalid file as rejected, naming the file, the JSON path and the rule, while the valid file of the same push runs', async () => {
    h = await harness({ workers: 0 });
    const commit = await h.push({ 'projects/bad.json': JSON.stringify({ tasks: [{ id: 'x', run: 7 }] }), 'projects/good.json': project('a') });
    const bad = (await h.run(runIdFor('projects/bad.json', commit)))!;
    expect(bad.run.state).toBe('rejected');
    expect(bad.run.error).toBe('projects/bad.json: $.tasks[0].run: expected a shell command string or an array of strings [program, ...args]');
    expect((await h.run(runIdFor('projects/good.json', commit)))!.run.state).toBe('queued');
    expect(h.queue.peek('todo')).toHaveLength(1);
  });

  it('makes one run of a push delivered twice, and of overlapping ranges', async () => {
    h = await harness({ workers: 0 });
    const first = await h.push({ 'projects/p.json': project('a') });
    await h.dispatcher.handlePush({ repo: 'tache_a_faire', ref: 'refs/heads/main', before: '0'.repeat(40), after: first, source: 'again' });
    const second = await h.push({ 'projects/q.json': project('b') });
    // A late delivery of the first push, after the second was dispatched, starts nothing new.
    await h.dispatcher.handlePush({ repo: 'tache_a_faire', ref: 'refs/heads/main', before: '0'.repeat(40), after: first, source: 'late' });
    expect((await h.store.subjects('tache_suivi')).filter((s) => s.includes(': queued ('))).toEqual([
      `${runIdFor('projects/p.json', first)}: queued (1 task from projects/p.json)`,
      `${runIdFor('projects/q.json', second)}: queued (1 task from projects/q.json)`,
    ]);
    expect(h.queue.peek('todo')).toHaveLength(2);
  });

  it('ignores other branches, tags and repositories, and passes config pushes on', async () => {
    h = await harness({ workers: 0 });
    const after = (await h.store.head('tache_a_faire'))!;
    for (const ref of ['refs/heads/dev', 'refs/tags/v1']) expect(await h.dispatcher.handlePush({ repo: 'tache_a_faire', ref, before: '0'.repeat(40), after, source: 't' })).toEqual([]);
    expect(await h.dispatcher.handlePush({ repo: 'elsewhere', ref: 'refs/heads/main', before: '0'.repeat(40), after, source: 't' })).toEqual([]);
    const config = (await h.store.head('config'))!;
    expect(await h.dispatcher.handlePush({ repo: 'config', ref: 'refs/heads/main', before: '0'.repeat(40), after: config, source: 't' })).toEqual([]);
    expect(h.configs).toEqual([config]);
    expect(h.log.lines.filter((l) => l.msg.startsWith('push ignored')).map((l) => l.msg)).toEqual([
      'push ignored: push to refs/heads/dev ignored: only main is watched',
      'push ignored: tag push (refs/tags/v1) ignored: only branch main starts runs',
      "push ignored: repository elsewhere is not one of gitjobs' repositories (tache_a_faire, config)",
    ]);
  });

  it('cancels the unfinished runs of a project file that is deleted', async () => {
    h = await harness({ workers: 0 });
    const commit = await h.push({ 'projects/p.json': project('a', 'b') });
    const runId = runIdFor('projects/p.json', commit);
    const deleted = await h.push({ 'projects/p.json': null });
    const view = (await h.run(runId))!;
    expect(view.tasks.map((t) => t.state)).toEqual(['cancelled', 'cancelled']);
    expect(view.run.state).toBe('cancelled');
    expect(view.run.cancelled).toBe(`projects/p.json deleted in ${deleted.slice(0, 7)}`);
  });

  it(`refuses project files past ${PUSH_BYTES} bytes in one push, naming the rule, and runs the others`, async () => {
    h = await harness({ workers: 0 });
    const big = JSON.stringify({ description: 'x'.repeat(900 * 1024), tasks: [{ id: 'a', run: 'true' }] });
    const files: Record<string, string> = {};
    for (let i = 0; i < 19; i++) files[`projects/p${String(i).padStart(2, '0')}.json`] = big;
    const commit = await h.push(files);
    const states = await Promise.all(Object.keys(files).map(async (f) => (await h.run(runIdFor(f, commit)))!.run));
    expect(states.filter((r) => r.state === 'queued')).toHaveLength(18);
    expect(states.at(-1)!.error).toMatch(/the push carries more than 16777216 bytes of project files; this one is past the limit, push it again on its own/);
  });

  it('re-runs a finished run as RUN.r1 from the same todo commit, and refuses unknown and unfinished runs', async () => {
    h = await harness({ workers: 0 });
    const commit = await h.push({ 'projects/p.json': project('a') });
    const runId = runIdFor('projects/p.json', commit);
    expect(await h.dispatcher.rerun('nope-1234567')).toEqual({ outcome: 'unknown' });
    expect(await h.dispatcher.rerun(runId)).toEqual({ outcome: 'unfinished', state: 'queued' });
    await h.collector.cancel(runId, 'test');
    expect(await h.dispatcher.rerun(runId)).toEqual({ file: 'projects/p.json', run: `${runId}.r1`, outcome: 'queued', tasks: 1 });
    expect(await h.dispatcher.rerun(runId)).toMatchObject({ run: `${runId}.r2` });
    const again = (await h.run(`${runId}.r2`))!.run;
    expect(again).toMatchObject({ rerunOf: runId, todoCommit: commit, state: 'queued' });
  });

  it('checks again when another writer recorded the same run between its check and its commit', async () => {
    h = await harness({ workers: 0 });
    const files = { 'projects/p.json': project('a') };
    const after = await h.store.commit('tache_a_faire', { changes: Object.entries(files).map(([path, content]) => ({ path, content })), message: 'Push\n' });
    const runId = runIdFor('projects/p.json', after);
    // The other gitjobs records it first; ours must not record it twice.
    await h.store.commitAsOther('tache_suivi', { changes: [{ path: runPaths({ id: runId, layout: 2 }).runFile, content: '{"id":"x","state":"queued","tasks":[]}\n' }], message: `${runId}: queued (by the other)\n` });
    const outcomes = await h.dispatcher.handlePush({ repo: 'tache_a_faire', ref: 'refs/heads/main', before: '0'.repeat(40), after, source: 't' });
    expect(outcomes).toEqual([{ file: 'projects/p.json', run: runId, outcome: 'duplicate' }]);
    expect(await h.subjects(runId)).toEqual([`${runId}: queued (by the other)`]);
    await until(h, 'nothing more', () => true);
  });
});
