/**
 * The HTTP API of `up` against real RabbitMQ and Git: the queue web services
 * (the prototype's Flask role), the runs API and its OpenAPI description.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'amqplib';
import { AMQP_URL, startStack, type Stack } from '../helpers/stack.js';

const TOKEN = 'queue-service-token-123456';
let stack: Stack;
let base: string;
const auth = { authorization: `Bearer ${TOKEN}` };
const queue = `user-queue-${process.pid}`;

beforeAll(async () => {
  stack = await startStack({ workers: 0, apiToken: TOKEN });
  base = stack.running.url;
});
afterAll(async () => {
  await fetch(`${base}/api/queues/${queue}`, { method: 'DELETE', headers: auth }).catch(() => undefined);
  await stack?.stop();
});

describe('queue web services', () => {
  it('create, send, receive in order, 204 when empty, delete — through real RabbitMQ', async () => {
    const created = await fetch(`${base}/api/queues`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: queue }) });
    expect(created.status).toBe(201);
    for (const phrase of ['la tache numero 0 dit bonjour', 'la tache numero 1 dit bonjour']) {
      const sent = await fetch(`${base}/api/queues/${queue}/messages`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: phrase });
      expect(sent.status).toBe(202);
    }
    const json = await fetch(`${base}/api/queues/${queue}/messages`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ id_task: '2' }) });
    expect(json.status).toBe(202);
    const first = await fetch(`${base}/api/queues/${queue}/messages`, { headers: auth });
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await first.text()).toBe('la tache numero 0 dit bonjour');
    expect(await (await fetch(`${base}/api/queues/${queue}/messages`, { headers: auth })).text()).toBe('la tache numero 1 dit bonjour');
    expect(await (await fetch(`${base}/api/queues/${queue}/messages`, { headers: auth })).json()).toEqual({ id_task: '2' });
    expect((await fetch(`${base}/api/queues/${queue}/messages`, { headers: auth })).status).toBe(204);
    expect((await fetch(`${base}/api/queues/${queue}`, { method: 'DELETE', headers: auth })).status).toBe(204);
    expect((await fetch(`${base}/api/queues/${queue}/messages`, { headers: auth })).status).toBe(404);
  });

  it('refuses without the token, with a wrong one, and bad names', async () => {
    expect((await fetch(`${base}/api/queues`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x' }) })).status).toBe(401);
    expect((await fetch(`${base}/api/queues/x/messages`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const bad = await fetch(`${base}/api/queues`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'no spaces please' }) });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toContain('queue names are 1 to 100 characters');
  });

  it('reach only queues of their own namespace: never gitjobs’ own, nor another installation’s', async () => {
    const foreign = `foreign-${process.pid}.TODO`;
    const amqp = await connect(AMQP_URL);
    const ch = await amqp.createChannel();
    try {
      await ch.assertQueue(foreign, { durable: true });
      await ch.sendToQueue(foreign, Buffer.from('theirs'));
      for (const name of [stack.settings.queues.todo, stack.settings.queues.done, foreign]) {
        expect((await fetch(`${base}/api/queues/${name}`, { method: 'DELETE', headers: auth })).status, name).toBe(404);
        expect((await fetch(`${base}/api/queues/${name}/messages`, { headers: auth })).status, name).toBe(404);
      }
      // A queue of that name made through the service is another queue, in the namespace.
      expect((await fetch(`${base}/api/queues`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: foreign }) })).status).toBe(201);
      expect((await fetch(`${base}/api/queues/${foreign}/messages`, { headers: auth })).status).toBe(204);
      expect((await fetch(`${base}/api/queues/${foreign}`, { method: 'DELETE', headers: auth })).status).toBe(204);
      expect((await ch.checkQueue(foreign)).messageCount).toBe(1);
      expect((await ch.checkQueue(stack.settings.queues.todo)).queue).toBe(stack.settings.queues.todo);
    } finally {
      await ch.deleteQueue(foreign).catch(() => undefined);
      await amqp.close();
    }
  });

  it('serve a message as it was sent only when it is JSON or plain text, never sniffed', async () => {
    const name = `typed-${process.pid}`;
    await fetch(`${base}/api/queues`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
    try {
      await fetch(`${base}/api/queues/${name}/messages`, { method: 'POST', headers: { ...auth, 'content-type': 'text/html' }, body: '<script>alert(1)</script>' });
      const html = await fetch(`${base}/api/queues/${name}/messages`, { headers: auth });
      expect(html.headers.get('content-type')).toBe('application/octet-stream');
      expect(html.headers.get('x-content-type-options')).toBe('nosniff');
      expect(html.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox");
      expect(await html.text()).toBe('<script>alert(1)</script>');
      const form = await fetch(`${base}/api/queues/${name}/messages`, { method: 'POST', headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' });
      expect(form.status).toBe(400);
    } finally {
      await fetch(`${base}/api/queues/${name}`, { method: 'DELETE', headers: auth });
    }
  });
});

describe('runs API', () => {
  it('cancel and rerun need the token; with it, an unknown run is a 404 that names it', async () => {
    for (const action of ['cancel', 'rerun']) {
      expect((await fetch(`${base}/api/runs/x-1234567/${action}`, { method: 'POST' })).status).toBe(401);
      expect((await fetch(`${base}/api/runs/x-1234567/${action}`, { method: 'POST', headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      const unknown = await fetch(`${base}/api/runs/x-1234567/${action}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
      expect(unknown.status).toBe(404);
      expect((await unknown.json()).error).toContain('x-1234567');
    }
  });
});

describe('OpenAPI', () => {
  it('describes the API at /docs', async () => {
    const doc = await (await fetch(`${base}/docs`)).json();
    expect(doc.openapi).toMatch(/^3\./);
    for (const p of ['/api/runs', '/api/runs/{run}', '/api/runs/{run}/cancel', '/api/runs/{run}/rerun', '/api/queues', '/api/queues/{name}/messages']) expect(Object.keys(doc.paths)).toContain(p);
  });
});
