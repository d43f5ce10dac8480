/**
 * Property-based: random bodies and headers at the webhook endpoints always
 * get a clear 2xx/4xx answer with a reason, never a crash, and nothing
 * unsigned is acted on.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { PushEvent } from '../../src/core/events.js';
import { buildServer } from '../../src/server/app.js';
import { registerWebhooks } from '../../src/push/webhooks.js';

const SECRET = 'fuzz-secret-value';
let app: FastifyInstance;
const pushes: PushEvent[] = [];
beforeAll(async () => {
  app = await buildServer({ logger: pino({ level: 'silent' }), plugins: [(a) => registerWebhooks(a, { secret: SECRET, filter: { branch: 'main', repos: { todo: 'tache_a_faire', config: 'config' } }, onPush: (e) => pushes.push(e) })] });
  await app.ready();
});
afterAll(async () => {
  await app.close();
});

const sign = (body: string) => 'sha256=' + createHmac('sha256', SECRET).update(body).digest('hex');

describe('webhooks under random input', () => {
  it('unsigned or badly signed random deliveries: always 401 or 415, never acted on', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/webhooks/github', '/webhooks/gitea'),
        fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v)), fc.string()),
        fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain'),
        fc.option(fc.string({ maxLength: 80 })),
        async (url, body, type, signature) => {
          const headers: Record<string, string> = { 'content-type': type, 'x-github-event': 'push', 'x-gitea-event': 'push' };
          if (signature !== null) headers['x-hub-signature-256'] = signature;
          const res = await app.inject({ method: 'POST', url, payload: body, headers });
          expect([401, 415]).toContain(res.statusCode);
          expect(res.json().error).toBeTruthy();
        },
      ),
      { numRuns: 400 },
    );
    expect(pushes).toHaveLength(0);
  });

  it('signed random JSON: a reasoned 2xx or 400, never a 500', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue(),
          fc.record({ ref: fc.oneof(fc.string(), fc.constant('refs/heads/main')), before: fc.string(), after: fc.oneof(fc.string(), fc.constant('a'.repeat(40))), repository: fc.oneof(fc.jsonValue(), fc.record({ name: fc.oneof(fc.string(), fc.constant('tache_a_faire')) })) }, { requiredKeys: [] }),
        ),
        fc.constantFrom('push', 'ping', 'issues', ''),
        async (payload, event) => {
          const body = JSON.stringify(payload);
          const res = await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers: { 'content-type': 'application/json', 'x-github-event': event, 'x-hub-signature-256': sign(body) } });
          expect([200, 202, 400]).toContain(res.statusCode);
          const answer = res.json();
          expect(answer.error ?? answer.ignored ?? answer.accepted ?? answer.pong ?? answer.duplicate).toBeTruthy();
        },
      ),
      { numRuns: 400 },
    );
    for (const p of pushes) {
      expect(p.ref).toBe('refs/heads/main');
      expect(p.after).toMatch(/^[0-9a-f]{40}$/);
      expect(['tache_a_faire', 'config']).toContain(p.repo);
    }
  });
});
