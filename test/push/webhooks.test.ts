/**
 * The webhook endpoints with real GitHub payloads (@octokit/webhooks-examples)
 * and Gitea's headers; `inject` drives Fastify without opening a port, since
 * the network is not what is tested here.
 */
import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { PushEvent } from '../../src/core/events.js';
import { buildServer } from '../../src/server/app.js';
import { registerWebhooks } from '../../src/push/webhooks.js';

const SECRET = 'it-is-a-secret';
const examples = (createRequire(import.meta.url)('@octokit/webhooks-examples') as { name: string; examples: Record<string, unknown>[] }[]).find((e) => e.name === 'push')!.examples;
const sign = (body: string, secret = SECRET) => 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');

let app: FastifyInstance;
let pushes: PushEvent[];

async function server(secret: string | null = SECRET) {
  pushes = [];
  app = await buildServer({
    logger: pino({ level: 'silent' }),
    plugins: [(a) => registerWebhooks(a, { secret: secret ?? undefined, filter: { branch: 'main', repos: { todo: 'tache_a_faire', config: 'config' } }, onPush: (e) => pushes.push(e) })],
  });
  await app.ready();
}

const github = (body: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': crypto.randomUUID(), ...headers } });

/** A real example, pointed at the todo repository's main branch. */
function ourPush(i = 4) {
  const p = structuredClone(examples[i]!) as Record<string, unknown> & { repository: Record<string, unknown> };
  p.ref = 'refs/heads/main';
  p.repository.name = 'tache_a_faire';
  return p;
}

beforeEach(async () => {
  await server();
});

describe('POST /webhooks/github', () => {
  it('accepts every push example with a valid signature, and acts on those for a watched branch', async () => {
    expect(examples.length).toBeGreaterThanOrEqual(5);
    for (const example of examples) {
      const body = JSON.stringify(example);
      const res = await github(body, { 'x-hub-signature-256': sign(body) });
      expect(res.statusCode, res.body).toBe(202);
      // These examples push to Codertocat/Hello-World (tags, master): ignored, and the answer says why.
      expect(res.json().ignored).toMatch(/tag push|only main is watched|not one of gitjobs' repositories/);
    }
    expect(pushes).toHaveLength(0);
    const body = JSON.stringify(ourPush());
    const res = await github(body, { 'x-hub-signature-256': sign(body), 'x-github-delivery': 'd-1' });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ accepted: true, repo: 'tache_a_faire' });
    expect(pushes).toEqual([
      { repo: 'tache_a_faire', ref: 'refs/heads/main', before: '0'.repeat(40), after: (examples[4] as { after: string }).after, source: 'github', deliveryId: 'd-1', cloneUrl: 'https://github.com/Codertocat/Hello-World.git' },
    ]);
  });

  it('refuses wrong, missing and tampered signatures with 401 and enqueues nothing', async () => {
    for (const example of [...examples, ourPush()]) {
      const body = JSON.stringify(example);
      expect((await github(body, { 'x-hub-signature-256': sign(body, 'wrong secret') })).statusCode).toBe(401);
      const missing = await github(body);
      expect(missing.statusCode).toBe(401);
      expect(missing.json().error).toMatch(/signature missing/);
      const tampered = body.replace('"main"', '"mainx"').replace('Hello-World', 'Hello-Wxrld');
      expect(tampered).not.toBe(body);
      expect((await github(tampered, { 'x-hub-signature-256': sign(body) })).statusCode).toBe(401);
    }
    expect(pushes).toHaveLength(0);
  });

  it('starts one push for a delivery sent twice (manual redelivery)', async () => {
    const body = JSON.stringify(ourPush());
    const headers = { 'x-hub-signature-256': sign(body), 'x-github-delivery': 'same-id' };
    expect((await github(body, headers)).statusCode).toBe(202);
    const again = await github(body, headers);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ duplicate: true, delivery: 'same-id' });
    expect(pushes).toHaveLength(1);
  });

  it('answers ping, ignores other events with 202, and refuses form-encoded bodies with 415', async () => {
    const ping = JSON.stringify({ zen: 'Keep it logically awesome.' });
    expect((await github(ping, { 'x-github-event': 'ping', 'x-hub-signature-256': sign(ping) })).json()).toEqual({ ok: true, pong: true });
    const issue = JSON.stringify({ action: 'opened' });
    const res = await github(issue, { 'x-github-event': 'issues', 'x-hub-signature-256': sign(issue) });
    expect(res.statusCode).toBe(202);
    expect(res.json().ignored).toContain('"issues"');
    const form = 'payload=' + encodeURIComponent(JSON.stringify(ourPush()));
    const r415 = await app.inject({ method: 'POST', url: '/webhooks/github', payload: form, headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-github-event': 'push', 'x-hub-signature-256': sign(form) } });
    expect(r415.statusCode).toBe(415);
    expect(r415.json().error).toContain('application/json');
    expect(pushes).toHaveLength(0);
  });

  it('without a configured secret, takes unsigned deliveries', async () => {
    await server(null);
    expect((await github(JSON.stringify(ourPush()))).statusCode).toBe(202);
    expect(pushes).toHaveLength(1);
  });
});

describe('POST /webhooks/gitea', () => {
  // A push payload as Gitea 1.21 sends it: compare_url, null head_commit is allowed, lists may be null.
  const giteaPush = {
    ref: 'refs/heads/main',
    before: '1'.repeat(40),
    after: '2'.repeat(40),
    compare_url: 'http://gitea.local/alice/tache_a_faire/compare/1111111...2222222',
    commits: [{ id: '2'.repeat(40), message: 'Add project\n', added: ['projects/q.json'], removed: null, modified: null }],
    total_commits: 1,
    head_commit: null,
    repository: { id: 3, name: 'tache_a_faire', full_name: 'alice/tache_a_faire', clone_url: 'http://gitea.local/alice/tache_a_faire.git', default_branch: 'main' },
    pusher: { login: 'alice' },
    sender: { login: 'alice' },
  };
  const body = JSON.stringify(giteaPush);
  const gitea = (headers: Record<string, string>) =>
    app.inject({ method: 'POST', url: '/webhooks/gitea', payload: body, headers: { 'content-type': 'application/json', 'x-gitea-event': 'push', 'x-gitea-delivery': 'g-1', ...headers } });

  it("accepts a push signed with Gitea's bare hex X-Gitea-Signature", async () => {
    const res = await gitea({ 'x-gitea-signature': createHmac('sha256', SECRET).update(body).digest('hex') });
    expect(res.statusCode).toBe(202);
    expect(pushes).toEqual([{ repo: 'tache_a_faire', ref: 'refs/heads/main', before: '1'.repeat(40), after: '2'.repeat(40), source: 'gitea', deliveryId: 'g-1', cloneUrl: 'http://gitea.local/alice/tache_a_faire.git' }]);
  });

  it('accepts X-Hub-Signature-256 too, as Forgejo and newer Gitea send', async () => {
    expect((await gitea({ 'x-hub-signature-256': sign(body) })).statusCode).toBe(202);
  });

  it('refuses the same body with a wrong X-Gitea-Signature', async () => {
    const res = await gitea({ 'x-gitea-signature': createHmac('sha256', 'not the secret').update(body).digest('hex') });
    expect(res.statusCode).toBe(401);
    expect(pushes).toHaveLength(0);
  });
});
