/**
 * `rerun RUN --pinned`: the run's own config commit, not today's; and the
 * CLI's word when the base image under the workers changed since.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { baseChanges } from '../../src/cli/commands/rerun.js';
import { runIdFor } from '../../src/core/ids.js';
import { harness, until, type Harness } from './harness.js';

let h: Harness | undefined;
afterEach(async () => h?.stop());

describe('rerun --pinned', () => {
  it('uses the config commit the run had, where a plain re-run takes today’s', async () => {
    h = await harness();
    const oldConfig = (await h.store.head('config'))!;
    const commit = await h.push({ 'projects/p.json': JSON.stringify({ tasks: [{ id: 'a', run: 'true' }] }) });
    const id = runIdFor('projects/p.json', commit);
    await until(h, 'finished', async () => (await h!.run(id))?.run.doneCommit, { advanceMs: 100 });
    const newConfig = await h.store.commit('config', { changes: [{ path: 'workers/default/Dockerfile', content: 'FROM base\nRUN true\n' }], message: 'Change the worker\n' });
    await h.dispatcher.rerun(id, { pinned: true });
    await h.dispatcher.rerun(id);
    expect((await h.run(`${id}.r1`))!.run.configCommit).toBe(oldConfig);
    expect((await h.run(`${id}.r2`))!.run.configCommit).toBe(newConfig);
    // The pinned run's TODO messages name the old commit: workers build that Dockerfile.
    await until(h, 'r1 finished', async () => (await h!.run(`${id}.r1`))?.run.doneCommit, { advanceMs: 100 });
    expect((await h.subjects(`${id}.r1`)).at(0)).toBe(`${id}.r1: queued (1 task from projects/p.json, re-run of ${id})`);
  });

  it('runs only the tasks asked for, at the config commit asked for (bisect’s step), and refuses what is not there', async () => {
    h = await harness();
    const oldConfig = (await h.store.head('config'))!;
    const commit = await h.push({ 'projects/q.json': JSON.stringify({ tasks: [{ id: 'a', run: 'true' }, { id: 'b', run: 'true' }] }) });
    const id = runIdFor('projects/q.json', commit);
    await until(h, 'finished', async () => (await h!.run(id))?.run.doneCommit, { advanceMs: 100 });
    await h.store.commit('config', { changes: [{ path: 'README.md', content: 'x\n' }], message: 'Later\n' });
    expect(await h.dispatcher.rerun(id, { tasks: ['b'], config: oldConfig })).toEqual({ file: 'projects/q.json', run: `${id}.r1`, outcome: 'queued', tasks: 1 });
    const view = (await until(h, 'r1 finished', async () => ((await h!.run(`${id}.r1`))?.run.doneCommit ? h!.run(`${id}.r1`) : undefined), { advanceMs: 100 }))!;
    expect(view.run.configCommit).toBe(oldConfig);
    expect(view.tasks.map((t) => [t.id, t.state])).toEqual([['b', 'succeeded']]);
    expect(await h.dispatcher.rerun(id, { tasks: ['b', 'zz'] })).toEqual({ outcome: 'refused', error: `run ${id} has no task zz` });
    expect(await h.dispatcher.rerun(id, { config: 'f'.repeat(40) })).toEqual({ outcome: 'refused', error: `the config repository has no commit ${'f'.repeat(40)}` });
  });

  it('the CLI names each base image that changed between the run and its re-run', async () => {
    const task = (id: string, base?: string) => ({ id, worker: { host: 'h', image: 'sha256:img', ...(base ? { base } : {}) } });
    const views: Record<string, unknown> = {
      'r-1': { run: { id: 'r-1' }, tasks: [task('a', 'sha256:aaaaaaaaaaaa1111'), task('b', 'sha256:aaaaaaaaaaaa1111'), task('c')] },
      'r-1.r1': { run: { id: 'r-1.r1' }, tasks: [task('a', 'sha256:bbbbbbbbbbbb2222'), task('b', 'sha256:bbbbbbbbbbbb2222'), task('c', 'sha256:cc')] },
      'r-1.r2': { run: { id: 'r-1.r2' }, tasks: [task('a', 'sha256:aaaaaaaaaaaa1111')] },
    };
    const server = http.createServer((req, res) => {
      const id = decodeURIComponent(/^\/api\/runs\/([^/?]+)/.exec(req.url ?? '')?.[1] ?? '');
      res.writeHead(views[id] ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(views[id] ?? { error: 'no' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expect(await baseChanges(url, 'r-1', 'r-1.r1')).toEqual(['aaaaaaaaaaaa -> bbbbbbbbbbbb']);
      expect(await baseChanges(url, 'r-1', 'r-1.r2')).toEqual([]);
    } finally {
      server.close();
    }
  });
});
