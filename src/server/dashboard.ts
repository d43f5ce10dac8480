/**
 * The dashboard: static files from `public/`, no build step. Its data comes
 * from the JSON API and the event streams.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';

export const PUBLIC_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../public');

/** The dashboard runs only its own script and style, talks only to this server, and is framed by no one. */
export const DASHBOARD_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

export function registerDashboard(app: FastifyInstance, dir = PUBLIC_DIR): void {
  const files = new Map<string, { type: string; body: Buffer }>();
  for (const name of fs.readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    if (type) files.set(name, { type, body: fs.readFileSync(path.join(dir, name)) });
  }
  const index = files.get('index.html')!;
  const headers = { 'cache-control': 'no-cache', 'content-security-policy': DASHBOARD_CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' };
  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.type(index.type).headers(headers).send(index.body));
  app.get<{ Params: { file: string } }>('/dashboard/:file', { schema: { hide: true } }, async (req, reply) => {
    const f = files.get(req.params.file);
    if (!f) return reply.code(404).send({ error: 'no such file' });
    return reply.type(f.type).headers(headers).send(f.body);
  });
}
