/**
 * The queue web services, as the original prototype's Flask service offered
 * them: create a queue, send a message, take one, delete the queue. Every
 * route follows the access rule (access.ts). A queue named `demo` here is
 * `<namespace>demo` on the broker: these routes reach no other queue, neither
 * gitjobs' own nor another installation's.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { QueueService } from '../core/ports.js';
import { changeGuard, type Access } from './access.js';

const NAME = /^[A-Za-z0-9._-]{1,100}$/;

export interface QueueRoutesOptions {
  service: QueueService;
  /** Prefix of every queue these routes manage on the broker (userQueueNamespace in core/settings.ts). */
  namespace: string;
  access: Access;
}

/** Messages are served with their own type only when it cannot run script: JSON and plain text. */
export function servedType(contentType: string): string {
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
  if (type === 'application/json') return 'application/json; charset=utf-8';
  if (type === 'text/plain') return 'text/plain; charset=utf-8';
  return 'application/octet-stream';
}

export function registerQueueRoutes(app: FastifyInstance, options: QueueRoutesOptions): void {
  const { service, namespace } = options;
  /** The broker's name for a queue of this service, or why the name is refused. */
  const resolve = (name: unknown, reply: FastifyReply): string | undefined => {
    if (typeof name === 'string' && NAME.test(name) && name !== '.' && name !== '..') return `${namespace}${name}`;
    void reply.code(400).send({ error: `queue names are 1 to 100 characters of A-Z a-z 0-9 . _ -; ${JSON.stringify(name)} is not one` });
    return undefined;
  };

  app.register(async (scope) => {
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_req, body, done) => done(null, body));
    scope.addContentTypeParser('text/plain', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_req, body, done) => done(null, body));
    scope.addHook('onSend', async (_request, reply) => {
      void reply.header('x-content-type-options', 'nosniff');
    });
    const json = changeGuard(options.access, 'json');
    const message = changeGuard(options.access, 'message');

    scope.post<{ Body: unknown }>(
      '/api/queues',
      {
        onRequest: json,
        schema: {
          summary: 'Create a queue',
          body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } }, additionalProperties: false },
          response: { 201: { type: 'object', properties: { name: { type: 'string' } } } },
        },
      },
      async (request, reply) => {
        const name = (request.body as { name: string }).name;
        const queue = resolve(name, reply);
        if (!queue) return reply;
        await service.create(queue);
        return reply.code(201).send({ name });
      },
    );

    scope.post<{ Params: { name: string } }>('/api/queues/:name/messages', { onRequest: message, schema: { summary: 'Send a message (the body, as it is, with its Content-Type)' } }, async (request, reply) => {
      const queue = resolve(request.params.name, reply);
      if (!queue) return reply;
      // JSON bodies arrive parsed; everything else as bytes.
      const b = request.body;
      const body = Buffer.isBuffer(b) ? b : Buffer.from(JSON.stringify(b ?? null));
      if (!body.length) return reply.code(400).send({ error: 'the message is empty' });
      const ok = await service.send(queue, body, request.headers['content-type'] ?? 'application/octet-stream');
      return ok ? reply.code(202).send({ queued: true }) : reply.code(404).send({ error: `no queue ${request.params.name}: create it with POST /api/queues` });
    });

    // Taking a message removes it: a change like the others.
    scope.get<{ Params: { name: string } }>('/api/queues/:name/messages', { onRequest: json, schema: { summary: 'Take one message (204 when the queue is empty); served as sent when JSON or plain text, else as application/octet-stream' } }, async (request, reply) => {
      const queue = resolve(request.params.name, reply);
      if (!queue) return reply;
      const r = await service.receive(queue);
      if (r === 'missing') return reply.code(404).send({ error: `no queue ${request.params.name}` });
      if (r === 'empty') return reply.code(204).send();
      return reply.code(200).type(servedType(r.contentType)).header('content-security-policy', "default-src 'none'; sandbox").send(r.body);
    });

    scope.delete<{ Params: { name: string } }>('/api/queues/:name', { onRequest: json, schema: { summary: 'Delete a queue' } }, async (request, reply) => {
      const queue = resolve(request.params.name, reply);
      if (!queue) return reply;
      return (await service.remove(queue)) ? reply.code(204).send() : reply.code(404).send({ error: `no queue ${request.params.name}` });
    });
  });
}
