/**
 * The HTTP server, assembled from plugins. Routes validate, call the core
 * and answer; they hold no business logic.
 */
import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';

export interface ServerOptions {
  logger: FastifyBaseLogger;
  /** Registered before the server starts listening. */
  plugins: ((app: FastifyInstance) => void)[];
}

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger,
    // Git clients make many requests per clone; pushes and runs are logged where they happen.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
  });
  // The OpenAPI description is built from the routes' own schemas.
  await app.register(swagger, {
    openapi: {
      info: { title: 'gitjobs', version: '0.1.0', description: 'Runs and tasks read from the tracking repository, cancellation, and the queue web services.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  // Nothing this server sends is to be sniffed into something that runs.
  app.addHook('onSend', async (_request, reply) => {
    if (!reply.hasHeader('x-content-type-options')) void reply.header('x-content-type-options', 'nosniff');
  });
  app.get('/healthz', { schema: { hide: true } }, async () => ({ ok: true }));
  app.get('/docs', { schema: { hide: true } }, async () => app.swagger());
  for (const plugin of options.plugins) plugin(app);
  return app;
}
