/**
 * The remote path end to end: the four repositories live on a "forge" (the
 * stand-in: the built-in Git host as its Git side, a loopback REST API as its
 * API side). gitjobs mirrors them, receives signed webhooks, pushes its
 * commits back, and sets commit statuses — with a second client pushing to
 * tracking in the middle of a run.
 */
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { up, type Running } from '../../src/app/gitjobs.js';
import { runIdFor } from '../../src/core/ids.js';
import { layout } from '../../src/core/layout.js';
import { DEFAULT_SETTINGS, prefixedQueues, type Settings } from '../../src/core/settings.js';
import { startStandIn, type StandIn } from '../helpers/forge-standin.js';
import { AMQP_URL, git, gitAsync, tmpdir } from '../helpers/stack.js';

const SECRET = 'webhook-secret-for-tests';
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(options: { pollMs?: number } = {}) {
  const standIn = await startStandIn();
  cleanups.push(() => standIn.close());
  const settings: Settings = { ...DEFAULT_SETTINGS, queues: prefixedQueues(`test-remote-${process.pid}-${Math.random().toString(36).slice(2, 8)}`) };
  const home = tmpdir('remote-home');
  const running: Running = await up({
    home,
    host: '127.0.0.1',
    port: 0,
    workers: 2,
    executor: 'docker',
    amqpUrl: AMQP_URL,
    settings,
    logger: pino({ level: process.env.GITJOBS_TEST_LOG ?? 'silent' }),
    forge: { kind: 'gitea', url: standIn.url, owner: standIn.owner, token: standIn.token, gitBaseUrl: standIn.gitBaseUrl },
    webhookSecret: SECRET,
    ...(options.pollMs ? { pollMs: options.pollMs } : {}),
  });
  cleanups.push(async () => {
    await running.queue.deleteQueues().catch(() => undefined);
    await running.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });
  /** A person's push to the forge with the git CLI. */
  const push = async (repo: string, files: Record<string, string>, message: string) => {
    const dir = tmpdir('remote-clone');
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    await gitAsync(dir, 'clone', '-q', standIn.authedUrl(repo), '.');
    const before = git(dir, 'rev-parse', 'HEAD').trim();
    for (const [f, c] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.writeFileSync(path.join(dir, f), c);
    }
    git(dir, 'add', '-A');
    git(dir, '-c', 'user.name=Other', '-c', 'user.email=o@example.test', 'commit', '-qm', message);
    await gitAsync(dir, 'push', '-q', 'origin', 'HEAD:main');
    return { before, after: git(dir, 'rev-parse', 'HEAD').trim() };
  };
  /** The forge's webhook delivery, signed as Gitea signs it. */
  const deliver = async (before: string, after: string, delivery: string) => {
    const body = JSON.stringify({ ref: 'refs/heads/main', before, after, compare_url: '', commits: null, head_commit: null, repository: { name: settings.repos.todo, clone_url: standIn.authedUrl(settings.repos.todo) } });
    return fetch(`${running.url}/webhooks/gitea`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'x-gitea-event': 'push', 'x-gitea-delivery': delivery, 'x-gitea-signature': createHmac('sha256', SECRET).update(body).digest('hex') },
    });
  };
  /** Waits until the forge's tracking repository has the run's final record. */
  const waitOnForge = async (runId: string, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const head = await standIn.store.head(settings.repos.tracking);
      const text = head && (await standIn.store.readFile(settings.repos.tracking, head, layout.runFile(runId)));
      if (text && JSON.parse(text).doneCommit) return JSON.parse(text);
      if (Date.now() > deadline) throw new Error(`run ${runId} did not reach the forge`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return { standIn, running, settings, push, deliver, waitOnForge };
}

describe('repositories on a forge', () => {
  it('runs a pushed project, pushes every transition back while another client pushes to tracking, and keeps both', async () => {
    const { standIn, settings, push, deliver, waitOnForge, running } = await setup();
    const project = { project: 'remote', tasks: ['a', 'b', 'c', 'd'].map((id) => ({ id, run: `sleep 0.4; echo ${id}` })) };
    const { before, after } = await push(settings.repos.todo, { 'projects/remote.json': JSON.stringify(project) }, 'Add remote project');
    const res = await deliver(before, after, 'delivery-1');
    expect(res.status).toBe(202);
    const runId = runIdFor('projects/remote.json', after);

    // Someone else pushes to tracking while the run is going.
    await new Promise((r) => setTimeout(r, 700));
    await push(settings.repos.tracking, { 'notes/from-someone-else.txt': 'hello\n' }, 'Unrelated commit by another client');

    const run = await waitOnForge(runId);
    expect(run.state).toBe('succeeded');
    const doneHead = (await standIn.store.head(settings.repos.done))!;
    expect(await standIn.store.readFile(settings.repos.done, doneHead, layout.resultText(runId))).toBe('a\nb\nc\nd\n');
    expect(run.doneCommit).toBe(doneHead);

    const dir = tmpdir('remote-check');
    await gitAsync(dir, 'clone', '-q', standIn.authedUrl(settings.repos.tracking), '.');
    const subjects = git(dir, 'log', '--format=%s').trim().split('\n');
    expect(subjects).toContain('Unrelated commit by another client');
    const ours = subjects.filter((s) => s.startsWith(runId));
    expect(ours).toHaveLength(1 + 4 * 2 + 1);
    expect(new Set(ours).size).toBe(ours.length);
    expect(git(dir, 'rev-list', '--merges', 'HEAD').trim()).toBe('');
    expect(fs.readFileSync(path.join(dir, 'notes/from-someone-else.txt'), 'utf8')).toBe('hello\n');
    git(dir, 'fsck', '--strict');
    fs.rmSync(dir, { recursive: true, force: true });

    // The API links each transition to the forge's own commit page.
    const api = await (await fetch(`${running.url}/api/runs/${runId}`)).json();
    expect(api.commits.length).toBe(1 + 4 * 2 + 1);
    for (const c of api.commits) expect(c.url).toBe(`${standIn.gitBaseUrl}/${settings.repos.tracking}/commit/${c.commit}`);

    // Commit statuses on the todo commit: pending with progress, then success.
    const statuses = standIn.calls.filter((c) => c.method === 'POST' && c.path === `/api/v1/repos/${standIn.owner}/${settings.repos.todo}/statuses/${after}`);
    expect(statuses.every((c) => c.auth === `token ${standIn.token}`)).toBe(true);
    const bodies = statuses.map((c) => c.body as { state: string; description: string; context: string; target_url: string });
    expect(bodies[0]).toMatchObject({ state: 'pending', description: '0/4 tasks done', context: 'gitjobs/remote' });
    expect(bodies.at(-1)).toMatchObject({ state: 'success', description: '4/4 tasks done' });
    expect(bodies.at(-1)!.target_url).toMatch(new RegExp(`/api/runs/${runId}$`));
    expect(bodies.map((b) => b.description)).toContain('2/4 tasks done');
  });

  it('starts one run when the webhook and the poller both see the same commit, and the poller alone catches a dropped delivery', async () => {
    const { settings, push, deliver, waitOnForge, running } = await setup({ pollMs: 300 });
    const first = await push(settings.repos.todo, { 'projects/both.json': JSON.stringify({ tasks: [{ id: 'x', run: 'echo both' }] }) }, 'both');
    expect((await deliver(first.before, first.after, 'd-both')).status).toBe(202);
    const runId = runIdFor('projects/both.json', first.after);
    await waitOnForge(runId);
    // A second push whose webhook never arrives.
    const second = await push(settings.repos.todo, { 'projects/dropped.json': JSON.stringify({ tasks: [{ id: 'y', run: 'echo polled' }] }) }, 'dropped');
    const dropped = await waitOnForge(runIdFor('projects/dropped.json', second.after));
    expect(dropped.state).toBe('succeeded');
    // And a late redelivery of the first webhook changes nothing.
    expect((await deliver(first.before, first.after, 'd-both-late')).status).toBe(202);
    await new Promise((r) => setTimeout(r, 1000));
    const log = await running.store.log(settings.repos.tracking);
    expect(log.filter((c) => c.message.startsWith(`${runId}: queued`))).toHaveLength(1);
    expect(log.filter((c) => c.message.includes(': queued ('))).toHaveLength(2);
  });
});
