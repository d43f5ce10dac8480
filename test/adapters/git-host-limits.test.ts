/**
 * The built-in Git host's limits, with the stock git CLI and raw HTTP: a
 * push that stalls or whose client goes away is ended with its git
 * processes, so that the next push is not held up; a pack past the size
 * limit is refused by receive-pack.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { BuiltinForge } from '../../src/adapters/builtin/forge.js';
import { Access } from '../../src/server/access.js';
import { LocalGitStore } from '../../src/adapters/git/local-store.js';
import type { PushEvent } from '../../src/core/events.js';
import { DEFAULT_SETTINGS } from '../../src/core/settings.js';
import { buildServer } from '../../src/server/app.js';
import { git, gitAsync, rmTree, tmpdir } from '../helpers/stack.js';

let app: FastifyInstance;
let forge: BuiltinForge;
let store: LocalGitStore;
let root: string;
let port: number;
const events: PushEvent[] = [];
const logged: string[] = [];

beforeAll(async () => {
  root = tmpdir('host-limits');
  store = new LocalGitStore(root);
  forge = new BuiltinForge(store, DEFAULT_SETTINGS.repos, { limits: { idleMs: 1000, totalMs: 20_000 }, maxPushBytes: 1024 * 1024 });
  await forge.ensureRepos();
  app = await buildServer({ logger: pino({ level: 'warn' }, { write: (l: string) => void logged.push(l) }), plugins: [(a) => forge.register(a)] });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  port = typeof addr === 'object' && addr ? addr.port : 0;
  forge.setBaseUrl(`http://127.0.0.1:${port}`);
  forge.onPush((e) => events.push(e));
});
afterAll(async () => {
  await app?.close();
  // The store's first commits scheduled a repack for when writing has been quiet (3 s): closing the store waits
  // for it. Without that, the repack wrote packs while the folder was being removed (ENOTEMPTY, twice in CI).
  await store?.close();
  await vi.waitFor(() => expect(gitProcesses()).toEqual([]), { timeout: 10_000, interval: 50 });
  rmTree(root);
});

/** Processes started for this host's repositories (their environment names its root). */
function gitProcesses(): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(`GIT_PROJECT_ROOT=${root}`)) pids.push(Number(entry));
    } catch {
      /* gone, or not ours to read */
    }
  }
  return pids;
}

/** Starts a push by hand and sends only part of its body; the socket is returned, open. */
function partialPush(): Promise<{ socket: net.Socket; answer: Promise<string> }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(
        [
          'POST /git/tache_a_faire.git/git-receive-pack HTTP/1.1',
          `Host: 127.0.0.1:${port}`,
          'Content-Type: application/x-git-receive-pack-request',
          'Content-Length: 100000',
          '',
          '0000',
        ].join('\r\n'),
      );
      let text = '';
      const answer = new Promise<string>((done) => {
        socket.on('data', (d) => (text += d.toString('latin1')));
        socket.on('close', () => done(text));
        socket.on('error', () => done(text));
      });
      resolve({ socket, answer });
    });
  });
}

async function pushOne(name: string): Promise<void> {
  const dir = tmpdir('limits-push');
  await gitAsync(dir, 'clone', '-q', forge.cloneUrl('tache_a_faire'), '.');
  fs.writeFileSync(path.join(dir, `${name}.txt`), name);
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', name);
  await gitAsync(dir, 'push', '-q', 'origin', 'main');
  rmTree(dir);
}

describe('a push that stalls', () => {
  it('is ended after the idle limit with its git processes, and the next push goes through', async () => {
    const { socket, answer } = await partialPush();
    await vi.waitFor(() => expect(gitProcesses().length).toBeGreaterThan(0), { timeout: 5000, interval: 50 });
    const started = Date.now();
    const text = await answer;
    expect(Date.now() - started).toBeLessThan(8000);
    expect(text).toMatch(/^HTTP\/1\.1 408|^$/);
    socket.destroy();
    await vi.waitFor(() => expect(gitProcesses()).toEqual([]), { timeout: 5000, interval: 50 });
    expect(logged.join('')).toContain('git request ended early; its git processes were stopped');
    const before = events.length;
    await pushOne('after-stall');
    await vi.waitFor(() => expect(events.length).toBe(before + 1));
  });
});

describe('a push whose client goes away', () => {
  it('has its git processes stopped at once', async () => {
    const { socket } = await partialPush();
    await vi.waitFor(() => expect(gitProcesses().length).toBeGreaterThan(0), { timeout: 5000, interval: 50 });
    socket.destroy();
    // Well before the idle limit would end it.
    await vi.waitFor(() => expect(gitProcesses()).toEqual([]), { timeout: 900, interval: 20 });
    expect(logged.join('')).toContain('"ended":"aborted"');
    await pushOne('after-abort');
  });
});

describe('a pack past the size limit', () => {
  it('is refused by receive-pack, and nothing moves', async () => {
    const dir = tmpdir('limits-big');
    await gitAsync(dir, 'clone', '-q', forge.cloneUrl('tache_a_faire'), '.');
    fs.writeFileSync(path.join(dir, 'random.bin'), crypto.randomBytes(3 * 1024 * 1024));
    git(dir, 'add', '-A');
    git(dir, 'commit', '-qm', 'too big');
    await expect(gitAsync(dir, 'push', '-q', 'origin', 'main')).rejects.toThrow(/maximum allowed size|unpack|remote rejected|failed to push/);
    expect(git(root, '--git-dir', path.join(root, 'tache_a_faire.git'), 'rev-parse', 'main').trim()).not.toBe(git(dir, 'rev-parse', 'HEAD').trim());
    rmTree(dir);
  });
});

describe('the commit view', () => {
  it('streams a commit cut at its cap', async () => {
    const dir = tmpdir('limits-view');
    await gitAsync(dir, 'clone', '-q', forge.cloneUrl('tache_a_faire'), '.');
    fs.writeFileSync(path.join(dir, 'spaces.txt'), `${' '.repeat(200)}\n`.repeat(20_000));
    git(dir, 'add', '-A');
    git(dir, 'commit', '-qm', 'four megabytes of spaces');
    await gitAsync(dir, 'push', '-q', 'origin', 'main');
    const sha = git(dir, 'rev-parse', 'HEAD').trim();
    const res = await fetch(`http://127.0.0.1:${port}/git/tache_a_faire.git/commit/${sha}`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text.length).toBeLessThan(1024 * 1024 + 100);
    expect(text).toContain('four megabytes of spaces');
    expect(text.trimEnd().endsWith(`[cut at ${1024 * 1024} bytes]`)).toBe(true);
    expect((await fetch(`http://127.0.0.1:${port}/git/tache_a_faire.git/commit/${'0'.repeat(40)}`)).status).toBe(404);
    rmTree(dir);
  });
});

describe('a built-in host that mirrors a forge', () => {
  it('answers every request, reads too, only with the token (or, without one, to loopback clients)', async () => {
    const token = 'mirror-token-0123456789';
    const guarded = new BuiltinForge(new LocalGitStore(root), DEFAULT_SETTINGS.repos, { pushable: 'none', access: new Access({ token }), guard: 'all' });
    const open = new BuiltinForge(new LocalGitStore(root), DEFAULT_SETTINGS.repos, { pushable: 'none', guard: 'all' });
    const url = '/git/config.git/info/refs?service=git-upload-pack';
    const headers = { host: '127.0.0.1' };
    for (const [forgeUnderTest, cases] of [
      [guarded, [[{ remoteAddress: '127.0.0.1' }, 401], [{ remoteAddress: '203.0.113.5', headers: { ...headers, authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` } }, 200]]],
      [open, [[{ remoteAddress: '203.0.113.5' }, 403], [{ remoteAddress: '127.0.0.1' }, 200]]],
    ] as const) {
      const server = await buildServer({ logger: pino({ level: 'silent' }), plugins: [(a) => forgeUnderTest.register(a)] });
      for (const [extra, status] of cases) {
        const res = await server.inject({ method: 'GET', url, headers, ...extra });
        expect(res.statusCode, JSON.stringify(extra)).toBe(status);
      }
      await server.close();
    }
  });
});
