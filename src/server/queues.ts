/**
 * The queue web services, as the original prototype's Flask service offered
 * them: create a queue, send a message, take one, delete the queue. Every
 * route needs the API token; gitjobs' own queues are out of reach.
 */
import type { FastifyInstance } from 'fastify';
import type { QueueService } from '../core/ports.js';
import { authorise } from './api.js';

const NAME = /^[A-Za-z0-9._-]{1,100}$/;

export interface QueueRoutesOptions {
  service: QueueService;
  /** gitjobs' own queues and exchange: never touched through these routes. */
  reserved: readonly string[];
  apiToken: string | undefined;
}

export function registerQueueRoutes(app: FastifyInstance, options: QueueRoutesOptions): void {
  const check = (name: string): string | undefined => {
    if (!NAME.test(name) || name.startsWith('amq.')) return `queue names are 1 to 100 characters of A-Z a-z 0-9 . _ - and do not start with "amq."; ${JSON.stringify(name)} is not one`;
    if (options.reserved.includes(name)) return `${name} is one of gitjobs' own queues and cannot be used through this service`;
    return undefined;
  };

  app.register(async (scope) => {
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_req, body, done) => done(null, body));
    scope.addHook('onRequest', async (request, reply) => {
      if (!authorise(request, reply, options.apiToken)) return reply;
    });

    scope.post<{ Body: unknown }>(
      '/api/queues',
      {
        schema: {
          summary: 'Create a queue',
          body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } }, additionalProperties: false },
          response: { 201: { type: 'object', properties: { name: { type: 'string' } } } },
        },
      },
      async (request, reply) => {
        const name = (request.body as { name: string }).name;
        const bad = check(name);
        if (bad) return reply.code(name && options.reserved.includes(name) ? 403 : 400).send({ error: bad });
        await options.service.create(name);
        return reply.code(201).send({ name });
      },
    );

    scope.post<{ Params: { name: string } }>('/api/queues/:name/messages', { schema: { summary: 'Send a message (the body, as it is)' } }, async (request, reply) => {
      const { name } = request.params;
      const bad = check(name);
      if (bad) return reply.code(options.reserved.includes(name) ? 403 : 400).send({ error: bad });
      // JSON and text bodies arrive parsed; everything else as bytes.
      const b = request.body;
      const body = Buffer.isBuffer(b) ? b : typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(JSON.stringify(b ?? null));
      if (!body.length) return reply.code(400).send({ error: 'the message is empty' });
      const ok = await options.service.send(name, body, request.headers['content-type'] ?? 'application/octet-stream');
      return ok ? reply.code(202).send({ queued: true }) : reply.code(404).send({ error: `no queue ${name}: create it with POST /api/queues` });
    });

    scope.get<{ Params: { name: string } }>('/api/queues/:name/messages', { schema: { summary: 'Take one message (204 when the queue is empty)' } }, async (request, reply) => {
      const { name } = request.params;
      const bad = check(name);
      if (bad) return reply.code(options.reserved.includes(name) ? 403 : 400).send({ error: bad });
      const r = await options.service.receive(name);
      if (r === 'missing') return reply.code(404).send({ error: `no queue ${name}` });
      if (r === 'empty') return reply.code(204).send();
      return reply.code(200).type(r.contentType).send(r.body);
    });

    scope.delete<{ Params: { name: string } }>('/api/queues/:name', { schema: { summary: 'Delete a queue' } }, async (request, reply) => {
      const { name } = request.params;
      const bad = check(name);
      if (bad) return reply.code(options.reserved.includes(name) ? 403 : 400).send({ error: bad });
      return (await options.service.remove(name)) ? reply.code(204).send() : reply.code(404).send({ error: `no queue ${name}` });
    });
  });
}
