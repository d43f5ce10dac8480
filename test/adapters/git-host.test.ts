/** The built-in Git host with the stock git CLI as client. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { BuiltinForge } from '../../src/adapters/builtin/forge.js';
import { LocalGitStore } from '../../src/adapters/git/local-store.js';
import type { PushEvent } from '../../src/core/events.js';
import { DEFAULT_SETTINGS } from '../../src/core/settings.js';
import { buildServer } from '../../src/server/app.js';
import { git, gitAsync, rmTree, tmpdir } from '../helpers/stack.js';
import type { FastifyInstance } from 'fastify';

let app: FastifyInstance;
let forge: BuiltinForge;
let store: LocalGitStore;
let root: string;
const events: PushEvent[] = [];
const repos = DEFAULT_SETTINGS.repos;

beforeAll(async () => {
  root = tmpdir('host');
  store = new LocalGitStore(root);
  forge = new BuiltinForge(store, repos);
  expect(await forge.ensureRepos()).toEqual(['todo', 'tracking', 'done', 'config']);
  expect(await forge.ensureRepos()).toEqual([]);
  app = await buildServer({ logger: pino({ level: 'silent' }), plugins: [(a) => forge.register(a)] });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  forge.setBaseUrl(`http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`);
  forge.onPush((e) => events.push(e));
});
afterAll(async () => {
  await app?.close();
  // It waits for a repack its first commits scheduled, which would write packs while the folder is removed.
  await store?.close();
  rmTree(root);
});

describe('built-in Git host (smart HTTP through git http-backend)', () => {
  it('serves the template content to git clone', async () => {
    const dir = tmpdir('clone');
    await gitAsync(dir, 'clone', '-q', forge.cloneUrl(repos.config), '.');
    expect(fs.existsSync(path.join(dir, 'workers/default/Dockerfile'))).toBe(true);
    expect(git(dir, 'rev-parse', '--abbrev-ref', 'HEAD').trim()).toBe('main');
    rmTree(dir);
  });

  it('takes a git push and reports it as a push event', async () => {
    const dir = tmpdir('push');
    await gitAsync(dir, 'clone', '-q', forge.cloneUrl(repos.todo), '.');
    const before = git(dir, 'rev-parse', 'HEAD').trim();
    fs.writeFileSync(path.join(dir, 'projects/x.json'), '{}');
    git(dir, 'add', '-A');
    git(dir, 'commit', '-qm', 'x');
    await gitAsync(dir, 'push', '-q', 'origin', 'main');
    const after = git(dir, 'rev-parse', 'HEAD').trim();
    // The event follows the push's answer by a moment: the heads are read after git http-backend ends.
    await vi.waitFor(() => expect(events).toHaveLength(1));
    expect(events).toEqual([{ repo: repos.todo, ref: 'refs/heads/main', before, after, source: 'builtin' }]);
    // A new branch is reported with the zero id as `before`.
    await gitAsync(dir, 'push', '-q', 'origin', 'main:feature');
    await vi.waitFor(() => expect(events).toHaveLength(2));
    expect(events[1]).toMatchObject({ ref: 'refs/heads/feature', before: '0'.repeat(40), after });
    rmTree(dir);
  });

  it('refuses pushes to the repositories gitjobs writes itself, saying why', async () => {
    const dir = tmpdir('push');
    await gitAsync(dir, 'clone', '-q', forge.cloneUrl(repos.tracking), '.');
    fs.writeFileSync(path.join(dir, 'evil.txt'), 'x');
    git(dir, 'add', '-A');
    git(dir, 'commit', '-qm', 'x');
    await expect(gitAsync(dir, 'push', '-q', 'origin', 'main')).rejects.toThrow(/403/);
    const res = await fetch(`${forge.cloneUrl(repos.tracking)}/info/refs?service=git-receive-pack`);
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('tache_suivi is written by gitjobs itself');
    rmTree(dir);
  });

  it('answers 404 for repositories it does not serve', async () => {
    const res = await fetch(forge.cloneUrl('nope') + '/info/refs?service=git-upload-pack');
    expect(res.status).toBe(404);
  });
});
