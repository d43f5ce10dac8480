/**
 * Recording one run from one project file: every way a file can be refused
 * before it is parsed (missing, too big for itself, past the push's budget,
 * no config to build from), what observers and the log hear, and a run
 * recorded once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SizeLimitError } from '../../src/core/errors.js';
import { runIdFor } from '../../src/core/ids.js';
import { PROJECT_LIMITS } from '../../src/core/project.js';
import type { RunObserver } from '../../src/core/ports.js';
import { PUSH_BYTES } from '../../src/dispatcher/dispatcher.js';
import { PushBudget, recordRun } from '../../src/dispatcher/record-run.js';
import { harness, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const project = JSON.stringify({ tasks: [{ id: 'a', run: 'true' }, { id: 'b', run: 'true' }] });

function ctx(observer?: RunObserver) {
  return { store: h.store, queue: h.queue, settings: h.settings, configUrl: 'memory://config.git', clock: h.clock, log: h.log, ...(observer ? { observer } : {}) };
}

describe('recording a run', () => {
  it('queues it, tells observers, publishes its tasks, records that the broker confirmed them, and logs it', async () => {
    h = await harness({ workers: 0 });
    const todo = await h.store.commit('tache_a_faire', { changes: [{ path: 'projects/p.json', content: project }], message: 'p\n' });
    const config = (await h.store.head('config'))!;
    const heard: unknown[] = [];
    const out = await recordRun(ctx({ runQueued: (r) => heard.push(r) }), { file: 'projects/p.json', todoCommit: todo, configCommit: config, budget: new PushBudget() });
    const run = runIdFor('projects/p.json', todo);
    expect(out).toEqual({ file: 'projects/p.json', run, outcome: 'queued', tasks: 2 });
    expect(heard).toEqual([{ id: run, todoCommit: todo, taskCount: 2 }]);
    expect(h.queue.peek('todo').map((m) => [m.run, m.task, m.attempt])).toEqual([[run, 'a', 1], [run, 'b', 1]]);
    expect((await h.store.subjects('tache_suivi')).slice(-2)).toEqual([`${run}: queued (2 tasks from projects/p.json)`, `${run}: published (2 TODO messages confirmed by the broker)`]);
    expect(h.log.lines.find((l) => l.msg === 'run queued')).toMatchObject({ level: 'info', run, file: 'projects/p.json', tasks: 2 });
    // Once recorded, the same file at the same commit is a duplicate.
    expect(await recordRun(ctx(), { file: 'projects/p.json', todoCommit: todo, configCommit: config, budget: new PushBudget() })).toEqual({ file: 'projects/p.json', run, outcome: 'duplicate' });
    expect(h.log.lines.find((l) => l.msg === 'run already recorded; duplicate push ignored')).toMatchObject({ run, file: 'projects/p.json' });
  });

  it('rejects a file that is not there, one past its size limit, and one with no config to build from, naming each', async () => {
    h = await harness({ workers: 0 });
    const big = JSON.stringify({ tasks: [{ id: 'a', run: 'true' }], description: 'x'.repeat(PROJECT_LIMITS.fileBytes) });
    const todo = await h.store.commit('tache_a_faire', { changes: [{ path: 'projects/big.json', content: big }, { path: 'projects/p.json', content: project }], message: 'p\n' });
    const config = (await h.store.head('config'))!;
    const heard: unknown[] = [];
    const c = ctx({ runRejected: (r) => heard.push(r) });
    const missing = await recordRun(c, { file: 'projects/none.json', todoCommit: todo, configCommit: config, budget: new PushBudget() });
    expect(missing).toMatchObject({ outcome: 'rejected', error: `projects/none.json: $: tache_a_faire has no projects/none.json at ${todo.slice(0, 7)}` });
    const tooBig = await recordRun(c, { file: 'projects/big.json', todoCommit: todo, configCommit: config, budget: new PushBudget() });
    expect(tooBig).toMatchObject({ outcome: 'rejected', error: `projects/big.json: $: file is ${Buffer.byteLength(big)} bytes; a project file may be at most ${PROJECT_LIMITS.fileBytes} bytes` });
    const noConfig = await recordRun(c, { file: 'projects/p.json', todoCommit: todo, configCommit: undefined, budget: new PushBudget() });
    expect(noConfig).toMatchObject({ outcome: 'rejected', error: 'projects/p.json: $: the config repository has no main branch to build workers from' });
    expect(heard).toEqual([missing, tooBig, noConfig].map((o) => ({ id: (o as { run: string }).run, todoCommit: todo, error: (o as { error: string }).error })));
    expect(h.log.lines.filter((l) => l.msg === 'project rejected').map((l) => [l.level, l.file])).toEqual([
      ['warn', 'projects/none.json'],
      ['warn', 'projects/big.json'],
      ['warn', 'projects/p.json'],
    ]);
    expect(h.queue.peek('todo')).toEqual([]);
  });
});

describe('a push’s budget', () => {
  it(`lets files through up to ${PUSH_BYTES} bytes in all, then refuses the one past it`, () => {
    const budget = new PushBudget();
    const step = PROJECT_LIMITS.fileBytes;
    let used = 0;
    while (used + step <= PUSH_BYTES) {
      budget.take(`f${used}`, step);
      used += step;
    }
    const rest = PUSH_BYTES - used;
    if (rest > 0) budget.take('rest', rest);
    expect(() => budget.take('one.json', 1)).toThrow(`one.json: $: the push carries more than ${PUSH_BYTES} bytes of project files; this one is past the limit, push it again on its own`);
  });
  it('counts a file past its own limit as just over it, and leaves refusing it to the size rule', () => {
    const budget = new PushBudget();
    const huge = 100 * PUSH_BYTES;
    expect(() => budget.take('huge.json', huge)).not.toThrow();
    // It used fileBytes + 1 of the budget, not 100 pushes' worth: files that fit still go.
    const mib = PROJECT_LIMITS.fileBytes;
    for (let i = 0; i < PUSH_BYTES / mib - 2; i++) budget.take(`f${i}.json`, mib);
    expect(() => budget.take('last.json', mib - 1)).not.toThrow();
    expect(() => budget.take('one-more.json', 1)).toThrow(/past the limit/);
  });
});

describe('recording a run, when the store misbehaves', () => {
  it('refuses a file that grew past its limit between sizing and reading, or vanished', async () => {
    h = await harness({ workers: 0 });
    const todo = await h.store.commit('tache_a_faire', { changes: [{ path: 'projects/p.json', content: project }, { path: 'projects/q.json', content: project }], message: 'p\n' });
    const config = (await h.store.head('config'))!;
    const fileSize = h.store.fileSize.bind(h.store);
    h.store.fileSize = async (repo: string, commit: string, path: string) => (repo === 'tache_a_faire' ? 10 : fileSize(repo, commit, path));
    const readFile = h.store.readFile.bind(h.store);
    h.store.readFile = async (repo: string, commit: string, path: string, options?: { maxBytes?: number }) => {
      if (repo === 'tache_a_faire' && path === 'projects/q.json') return undefined;
      if (repo === 'tache_a_faire') {
        expect(options).toEqual({ maxBytes: PROJECT_LIMITS.fileBytes });
        throw new SizeLimitError(path, 2 * PROJECT_LIMITS.fileBytes, PROJECT_LIMITS.fileBytes);
      }
      return readFile(repo, commit, path, options);
    };
    expect(await recordRun(ctx(), { file: 'projects/p.json', todoCommit: todo, configCommit: config, budget: new PushBudget() })).toMatchObject({
      outcome: 'rejected',
      error: `projects/p.json: $: file is ${2 * PROJECT_LIMITS.fileBytes} bytes; a project file may be at most ${PROJECT_LIMITS.fileBytes} bytes`,
    });
    expect(await recordRun(ctx(), { file: 'projects/q.json', todoCommit: todo, configCommit: config, budget: new PushBudget() })).toMatchObject({ outcome: 'rejected', error: `projects/q.json: $: tache_a_faire has no projects/q.json at ${todo.slice(0, 7)}` });
  });
  it('lets any other error of the store through, recording nothing', async () => {
    h = await harness({ workers: 0 });
    const todo = await h.store.commit('tache_a_faire', { changes: [{ path: 'projects/p.json', content: project }], message: 'p\n' });
    h.store.fileSize = async () => {
      throw new Error('store is down');
    };
    await expect(recordRun(ctx(), { file: 'projects/p.json', todoCommit: todo, configCommit: 'c', budget: new PushBudget() })).rejects.toThrow('store is down');
  });
  it('still queues a run whose "published" record could not be written, and says recovery will send its tasks again', async () => {
    h = await harness({ workers: 0 });
    const todo = await h.store.commit('tache_a_faire', { changes: [{ path: 'projects/p.json', content: project }], message: 'p\n' });
    const commit = h.store.commit.bind(h.store);
    h.store.commit = async (repo: string, options: Parameters<typeof commit>[1]) => {
      if (options.message.includes(': published (')) throw new Error('disk full');
      return commit(repo, options);
    };
    const out = await recordRun(ctx({}), { file: 'projects/p.json', todoCommit: todo, configCommit: (await h.store.head('config'))!, budget: new PushBudget() });
    expect(out).toMatchObject({ outcome: 'queued', tasks: 2 });
    expect(h.queue.peek('todo')).toHaveLength(2);
    expect(h.log.lines.find((l) => l.msg === 'could not record that the run was published; recovery sends its queued tasks again')).toMatchObject({ level: 'warn', err: 'disk full' });
    // An observer that hears nothing of runs is fine, rejected or queued.
    expect(await recordRun(ctx({}), { file: 'projects/none.json', todoCommit: todo, configCommit: 'c', budget: new PushBudget() })).toMatchObject({ outcome: 'rejected' });
  });
});

describe('size rules at their edges', () => {
  it('queue a project file of exactly the size limit', async () => {
    h = await harness({ workers: 0 });
    const base = JSON.stringify({ tasks: [{ id: 'a', run: 'true' }], description: '' });
    const text = base.replace('"description":""', `"description":"${'x'.repeat(PROJECT_LIMITS.fileBytes - base.length)}"`);
    const todo = await h.store.commit('tache_a_faire', { changes: [{ path: 'projects/p.json', content: text }], message: 'p\n' });
    expect(await recordRun(ctx(), { file: 'projects/p.json', todoCommit: todo, configCommit: (await h.store.head('config'))!, budget: new PushBudget() })).toMatchObject({ outcome: 'queued' });
  });
  it('leave a file past its own limit to the size rule even when the push budget is spent, and count one of exactly the limit', () => {
    const mib = PROJECT_LIMITS.fileBytes;
    const budget = new PushBudget();
    for (let i = 0; i < PUSH_BYTES / mib; i++) budget.take(`f${i}.json`, mib);
    expect(() => budget.take('huge.json', 5 * mib)).not.toThrow();
    const exact = new PushBudget();
    for (let i = 0; i < PUSH_BYTES / mib; i++) exact.take(`f${i}.json`, mib);
    expect(() => exact.take('one-mib.json', mib)).toThrow(/past the limit/);
  });
  it('let a read error other than a size through', async () => {
    h = await harness({ workers: 0 });
    const todo = await h.store.commit('tache_a_faire', { changes: [{ path: 'projects/p.json', content: project }], message: 'p\n' });
    h.store.readFile = async () => {
      throw new Error('io error');
    };
    await expect(recordRun(ctx(), { file: 'projects/p.json', todoCommit: todo, configCommit: 'c', budget: new PushBudget() })).rejects.toThrow('io error');
  });
});
