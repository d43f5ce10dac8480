/**
 * The HTTP server, assembled from plugins. Routes validate, call the core
 * and answer; they hold no business logic.
 */
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
  app.get('/healthz', async () => ({ ok: true }));
  for (const plugin of options.plugins) plugin(app);
  return app;
}
