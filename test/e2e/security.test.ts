/**
 * The security review's findings against a running `up` (real RabbitMQ, real
 * Git, the stock git CLI) without an API token: who may push and change
 * anything, cross-site requests and DNS rebinding, odd push paths, replayed
 * webhooks, and what the server sends back.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ZERO_SHA } from '../../src/core/events.js';
import { runIdFor } from '../../src/core/ids.js';
import { startStack, type Stack } from '../helpers/stack.js';

const SECRET = 'security-webhook-secret-0123';
let stack: Stack;
let port: number;

beforeAll(async () => {
  stack = await startStack({ workers: 0, webhookSecret: SECRET });
  port = Number(new URL(stack.running.url).port);
});
afterAll(async () => {
  await stack?.stop();
});

/** A raw HTTP request to the server, with exactly these headers (Host included). */
function request(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Waits until tracking records the run (a push is dispatched a moment after it is taken). */
const recorded = (runId: string) => vi.waitFor(async () => expect(await stack.readRun(runId)).toBeDefined(), { timeout: 10_000, interval: 50 });

const runs = async () => ((await (await fetch(`${stack.running.url}/api/runs`)).json()) as { runs: { id: string; state: string }[] }).runs;

describe('pushes without a token', () => {
  it('come from loopback clients only, with the rule named', async () => {
    // A client elsewhere on the network (the address as the server sees it).
    for (const url of ['/git/tache_a_faire.git/info/refs?service=git-receive-pack', '/git/tache_a_faire.git/git-receive-pack']) {
      const res = await stack.running.app.inject({ method: url.endsWith('pack') ? 'POST' : 'GET', url, remoteAddress: '203.0.113.9', headers: { host: `127.0.0.1:${port}`, 'content-type': 'application/x-git-receive-pack-request' }, payload: '' });
      expect(res.statusCode, url).toBe(403);
      expect(res.body).toContain('pushing to tache_a_faire is refused from 203.0.113.9: without GITJOBS_API_TOKEN only loopback clients may change anything');
    }
    // Reading stays open, as the dashboard and the API are.
    const read = await stack.running.app.inject({ method: 'GET', url: '/git/tache_a_faire.git/info/refs?service=git-upload-pack', remoteAddress: '203.0.113.9', headers: { host: `127.0.0.1:${port}` } });
    expect(read.statusCode).toBe(200);
    // And the stock git CLI on this machine pushes as before.
    const commit = await stack.push({ 'projects/local.json': JSON.stringify({ tasks: [{ id: 'a', run: 'true' }] }) });
    await recorded(runIdFor('projects/local.json', commit));
  });

  it('by any path that ends in git-receive-pack, or any service=git-receive-pack, count as pushes', async () => {
    const tries = [
      { method: 'POST', url: '/git/tache_suivi.git//git-receive-pack' },
      { method: 'POST', url: '/git/tache_suivi.git/git-receive-pack/' },
      { method: 'GET', url: '/git/tache_suivi.git/info/refs?service=git-upload-pack&service=git-receive-pack' },
    ];
    for (const t of tries) {
      const res = await stack.running.app.inject({ ...t, method: t.method as 'GET' | 'POST', headers: { host: `127.0.0.1:${port}`, 'content-type': 'application/x-git-receive-pack-request' }, payload: t.method === 'POST' ? '' : undefined });
      expect(res.statusCode, t.url).toBe(403);
      expect(res.body, t.url).toContain('tache_suivi is written by gitjobs itself and does not accept pushes');
    }
  });
});

describe('changes from a browser', () => {
  let runId: string;
  beforeAll(async () => {
    const commit = await stack.push({ 'projects/target.json': JSON.stringify({ tasks: [{ id: 'a', run: 'true' }] }) });
    runId = runIdFor('projects/target.json', commit);
    await recorded(runId);
  });

  it('are refused when the Host is not this server (DNS rebinding), naming it', async () => {
    const res = await request('POST', `/api/runs/${runId}/cancel`, { host: `attacker.example:${port}`, 'content-type': 'application/json' }, '{}');
    expect(res.status).toBe(421);
    expect(JSON.parse(res.text).error).toContain('this server does not answer to "attacker.example"');
  });

  it('are refused from another site (Origin), and with a body that is not JSON', async () => {
    const cross = await request('POST', `/api/runs/${runId}/cancel`, { origin: 'http://attacker.example', 'content-type': 'application/json' }, '{}');
    expect(cross.status).toBe(403);
    expect(JSON.parse(cross.text).error).toBe(`cross-site request refused: Origin "http://attacker.example" is not this server (127.0.0.1:${port})`);
    const text = await request('POST', `/api/runs/${runId}/rerun`, { 'content-type': 'text/plain' }, 'x');
    expect(text.status).toBe(400);
    expect(JSON.parse(text.text).error).toBe('this endpoint takes an application/json body (or none), not "text/plain"');
    const form = await request('POST', '/api/queues', { 'content-type': 'application/x-www-form-urlencoded' }, 'name=x');
    expect(form.status).toBe(400);
    const queueSend = await request('POST', '/api/queues/x/messages', { origin: 'http://attacker.example', 'content-type': 'text/plain' }, 'hello');
    expect(queueSend.status).toBe(403);
    // None of them changed anything: the run is still queued.
    expect((await runs()).find((r) => r.id === runId)?.state).toBe('queued');
  });

  it('from the dashboard itself (same Host and Origin, JSON) go through', async () => {
    const res = await request('POST', `/api/runs/${runId}/cancel`, { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' }, JSON.stringify({ reason: 'from the dashboard' }));
    expect(res.status).toBe(202);
    expect(JSON.parse(res.text)).toMatchObject({ cancelled: true });
  });

  it('come only from loopback without a token', async () => {
    const res = await stack.running.app.inject({ method: 'POST', url: `/api/runs/${runId}/rerun`, remoteAddress: '198.51.100.4', headers: { host: `127.0.0.1:${port}`, 'content-type': 'application/json' }, payload: '{}' });
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toContain('without GITJOBS_API_TOKEN only loopback clients may change anything');
  });
});

describe('what the server sends', () => {
  it('the dashboard carries a Content-Security-Policy, and nothing is sniffed', async () => {
    const page = await fetch(`${stack.running.url}/`);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect((await fetch(`${stack.running.url}/api/runs`)).headers.get('x-content-type-options')).toBe('nosniff');
  });
});

describe('request bodies', () => {
  it('are limited to 1 MiB on the API and 25 MiB on webhooks, and a body under the limit is taken', async () => {
    const json = (bytes: number) => JSON.stringify({ name: 'x', pad: 'p'.repeat(bytes) });
    const api = await request('POST', '/api/queues', { 'content-type': 'application/json' }, json(1024 * 1024));
    expect(api.status).toBe(413);
    const sign = (body: string) => createHmac('sha256', SECRET).update(body).digest('hex');
    const hook = (body: string) =>
      fetch(`${stack.running.url}/webhooks/gitea`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-gitea-event': 'push', 'x-gitea-delivery': `big-${body.length}`, 'x-gitea-signature': sign(body) } });
    // A push to a repository gitjobs does not watch, padded: taken (and ignored) up to 25 MiB.
    const push = (bytes: number) => JSON.stringify({ ref: 'refs/heads/main', before: ZERO_SHA, after: '1'.repeat(40), repository: { name: 'elsewhere' }, pad: 'p'.repeat(bytes) });
    const under = await hook(push(20 * 1024 * 1024));
    expect(under.status).toBe(202);
    expect(await under.json()).toMatchObject({ ignored: expect.stringContaining('elsewhere') });
    expect((await hook(push(25 * 1024 * 1024))).status).toBe(413);
  });
});

describe('a replayed webhook', () => {
  const deliver = (delivery: string, payload: object) => {
    const body = JSON.stringify(payload);
    return fetch(`${stack.running.url}/webhooks/gitea`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'x-gitea-event': 'push', 'x-gitea-delivery': delivery, 'x-gitea-signature': createHmac('sha256', SECRET).update(body).digest('hex') },
    });
  };

  it('with a new delivery id, or with `before` all zeros, runs nothing again', async () => {
    const dir = await stack.clone('tache_a_faire');
    const { execFileSync } = await import('node:child_process');
    const before = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
    const after = await stack.push({ 'projects/replayed.json': JSON.stringify({ tasks: [{ id: 'a', run: 'true' }] }) });
    await recorded(runIdFor('projects/replayed.json', after));
    const count = (await runs()).length;
    const payload = (b: string) => ({ ref: 'refs/heads/main', before: b, after, repository: { name: 'tache_a_faire', full_name: 'me/tache_a_faire' } });
    expect((await deliver('captured-1', payload(before))).status).toBe(202);
    expect((await deliver('captured-2', payload(before))).status).toBe(202);
    expect((await deliver('captured-3', payload(ZERO_SHA))).status).toBe(202);
    // The deliveries are taken at once and dispatched after: give them the time a dispatch takes.
    await new Promise((r) => setTimeout(r, 1000));
    expect((await runs()).length).toBe(count);
    expect(stack.logs()).toContain('push already dispatched; ignored');
  });
});
