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
import { Writable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { AmqpQueue } from '../../src/adapters/amqp/queue.js';
import { up, type Running } from '../../src/app/gitjobs.js';
import { createLogger } from '../../src/app/logger.js';
import { installationMasker } from '../../src/app/secrets.js';
import { runIdFor } from '../../src/core/ids.js';
import { readResultText, readRunRecord, repoTree } from '../../src/core/run-reader.js';
import { DEFAULT_SETTINGS, prefixedQueues, type Settings } from '../../src/core/settings.js';
import { startStandIn, type StandIn } from '../helpers/forge-standin.js';
import { AMQP_URL, git, gitAsync, rmTree, tmpdir } from '../helpers/stack.js';

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
  const forge = { kind: 'gitea' as const, url: standIn.url, owner: standIn.owner, token: standIn.token, gitBaseUrl: standIn.gitBaseUrl };
  // What gitjobs logs, through its own logger and its own list of secrets, as `up` writes it.
  let logText = '';
  const capture = new Writable({
    write(chunk: Buffer, _enc, done) {
      logText += chunk.toString('utf8');
      done();
    },
  });
  const logger = createLogger(process.env.GITJOBS_TEST_LOG ?? 'info', installationMasker({ webhookSecret: SECRET, forgeToken: forge.token, amqpUrl: AMQP_URL }), capture);
  const start = () =>
    up({ home, host: '127.0.0.1', port: 0, workers: 2, executor: 'docker', amqpUrl: AMQP_URL, settings, logger, forge, webhookSecret: SECRET, ...(options.pollMs ? { pollMs: options.pollMs } : {}) });
  let running: Running = await start();
  cleanups.push(async () => {
    await running.stop();
    const q = await AmqpQueue.connect({ url: AMQP_URL, queues: settings.queues });
    await q.deleteQueues();
    await q.close();
    rmTree(home);
  });
  /** Stops gitjobs, lets `meanwhile` happen, and starts it again on the same home. */
  const restart = async (meanwhile: () => Promise<void>) => {
    await running.stop();
    await meanwhile();
    running = await start();
    return running;
  };
  /** A person's push to the forge with the git CLI. */
  const push = async (repo: string, files: Record<string, string>, message: string) => {
    const dir = tmpdir('remote-clone');
    cleanups.push(() => rmTree(dir));
    await gitAsync(dir, 'clone', '-q', standIn.authedUrl(repo), '.');
    const before = git(dir, 'rev-parse', 'HEAD').trim();
    for (const [f, c] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.writeFileSync(path.join(dir, f), c);
    }
    git(dir, 'add', '-A');
    git(dir, '-c', 'user.name=Other', '-c', 'user.email=o@example.test', 'commit', '-qm', message);
    // As a person would when the branch moved under them (gitjobs pushes to tracking too): fetch, rebase, push again.
    for (let attempt = 1; ; attempt++) {
      try {
        await gitAsync(dir, 'push', '-q', 'origin', 'HEAD:main');
        break;
      } catch (err) {
        if (attempt >= 10 || !/rejected|failed to update ref|fetch first|non-fast-forward/.test(String(err))) throw err;
        await gitAsync(dir, '-c', 'user.name=Other', '-c', 'user.email=o@example.test', 'pull', '-q', '--rebase', 'origin', 'main');
      }
    }
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
      const run = head && (await readRunRecord(repoTree(standIn.store, settings.repos.tracking), head, runId));
      if (run && run.doneCommit) return run;
      if (Date.now() > deadline) throw new Error(`run ${runId} did not reach the forge; gitjobs logged:\n${logText.split('\n').slice(-40).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return { standIn, running, settings, push, deliver, waitOnForge, restart, logs: () => logText };
}

describe('repositories on a forge', () => {
  it('runs a pushed project, pushes every transition back while another client pushes to tracking, and keeps both', async () => {
    const { standIn, settings, push, deliver, waitOnForge, running } = await setup();
    const project = { project: 'remote', tasks: ['a', 'b', 'c', 'd'].map((id) => ({ id, run: `sleep 0.4; echo ${id}` })) };
    const { before, after } = await push(settings.repos.todo, { 'projects/remote.json': JSON.stringify(project) }, 'Add remote project');
    const res = await deliver(before, after, 'delivery-1');
    expect(res.status).toBe(202);
    const runId = runIdFor('projects/remote.json', after);

    // Someone else pushes to tracking while the run is going: once gitjobs has pushed its first commits there.
    await vi.waitFor(async () => expect((await standIn.store.log(settings.repos.tracking)).some((c) => c.message.startsWith(`${runId}: queued`))).toBe(true), { timeout: 30_000, interval: 50 });
    await push(settings.repos.tracking, { 'notes/from-someone-else.txt': 'hello\n' }, 'Unrelated commit by another client');

    const run = await waitOnForge(runId);
    expect(run.state).toBe('succeeded');
    const doneHead = (await standIn.store.head(settings.repos.done))!;
    expect(await readResultText(repoTree(standIn.store, settings.repos.done), doneHead, runId)).toBe('a\nb\nc\nd\n');
    expect(run.doneCommit).toBe(doneHead);

    const dir = tmpdir('remote-check');
    await gitAsync(dir, 'clone', '-q', standIn.authedUrl(settings.repos.tracking), '.');
    const subjects = git(dir, 'log', '--format=%s').trim().split('\n');
    expect(subjects).toContain('Unrelated commit by another client');
    const ours = subjects.filter((s) => s.startsWith(runId));
    expect(ours).toHaveLength(2 + 4 * 2 + 1);
    expect(new Set(ours).size).toBe(ours.length);
    expect(git(dir, 'rev-list', '--merges', 'HEAD').trim()).toBe('');
    expect(fs.readFileSync(path.join(dir, 'notes/from-someone-else.txt'), 'utf8')).toBe('hello\n');
    git(dir, 'fsck', '--strict');
    rmTree(dir);

    // The API links each transition to the forge's own commit page.
    const api = await (await fetch(`${running.url}/api/runs/${runId}`)).json();
    expect(api.commits.length).toBe(2 + 4 * 2 + 1);
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

  it('sets a failure status for a failed run, and keeps the forge token out of what it pushes and logs', async () => {
    const { standIn, settings, push, deliver, waitOnForge, logs } = await setup();
    const project = { tasks: [{ id: 'leak', run: `echo token=${standIn.token}; exit 1` }, { id: 'fine', run: 'echo fine' }] };
    const { before, after } = await push(settings.repos.todo, { 'projects/fails.json': JSON.stringify(project) }, 'A failing project');
    expect((await deliver(before, after, 'delivery-fails')).status).toBe(202);
    const runId = runIdFor('projects/fails.json', after);
    expect((await waitOnForge(runId)).state).toBe('failed');
    const statuses = () => standIn.calls.filter((c) => c.method === 'POST' && c.path === `/api/v1/repos/${standIn.owner}/${settings.repos.todo}/statuses/${after}`).map((c) => c.body as { state: string; description: string });
    await vi.waitFor(() => expect(statuses().at(-1)).toMatchObject({ state: 'failure', description: expect.stringMatching(/^\d\/2 tasks done, 1 failed$/) }), { timeout: 10_000, interval: 50 });
    const dir = tmpdir('remote-leak');
    await gitAsync(dir, 'clone', '-q', standIn.authedUrl(settings.repos.tracking), '.');
    const everything = git(dir, 'log', '-p', '--format=%B');
    expect(everything).toContain('token=***');
    expect(everything).not.toContain(standIn.token);
    rmTree(dir);
    expect(logs()).toContain(runId);
    expect(logs()).not.toContain(standIn.token);
  });

  it('finds with the poller a push made to the forge while gitjobs was stopped', async () => {
    const { settings, push, waitOnForge, restart } = await setup({ pollMs: 300 });
    let pushed = '';
    // Nobody delivers a webhook: gitjobs was not running when the push happened.
    await restart(async () => {
      pushed = (await push(settings.repos.todo, { 'projects/offline.json': JSON.stringify({ tasks: [{ id: 'o', run: 'echo while you were out' }] }) }, 'pushed while stopped')).after;
    });
    const run = await waitOnForge(runIdFor('projects/offline.json', pushed));
    expect(run.state).toBe('succeeded');
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
    // Pushes are dispatched one at a time, in order: once this one is handled, so is the late delivery.
    expect(await running.dispatcher.handlePush({ repo: settings.repos.todo, ref: 'refs/heads/main', before: first.before, after: first.after, source: 'after the late delivery' })).toEqual([]);
    const log = await running.store.log(settings.repos.tracking);
    expect(log.filter((c) => c.message.startsWith(`${runId}: queued`))).toHaveLength(1);
    expect(log.filter((c) => c.message.includes(': queued ('))).toHaveLength(2);
  });
});
