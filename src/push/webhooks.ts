/**
 * Webhook endpoints for GitHub and Gitea (and Forgejo). Each verifies the
 * signature over the raw body, drops redeliveries, normalises the push and
 * hands it over without waiting: the answer (202) comes at once, never after
 * Docker.
 */
import { createHmac } from 'node:crypto';
import { sameSecret } from '../core/same-secret.js';
import { Webhooks } from '@octokit/webhooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { PushEvent } from '../core/events.js';
import { normalisePush } from './payload.js';
import { classifyPush, type PushFilter } from './filter.js';

export interface WebhookOptions {
  /** When set, every delivery must be signed with it. */
  secret: string | undefined;
  /** Which pushes gitjobs acts on: the watched branch of todo and config. */
  filter: PushFilter;
  onPush: (event: PushEvent) => void;
  /** How many delivery ids are remembered to refuse replays. */
  rememberDeliveries?: number;
  /** Told of every delivery's outcome (metrics). */
  onOutcome?: (source: 'github' | 'gitea', outcome: string) => void;
}

/** Remembers the last N delivery ids. */
class RecentIds {
  private readonly ids = new Set<string>();
  constructor(private readonly max: number) {}
  /** False when the id was already seen. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value!);
    return true;
  }
}

function hexHmac(secret: string, body: Buffer): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function registerWebhooks(app: FastifyInstance, options: WebhookOptions): void {
  const github = options.secret ? new Webhooks({ secret: options.secret }) : undefined;
  const seen = new RecentIds(options.rememberDeliveries ?? 10_000);

  app.register(async (scope) => {
    // Signatures are over the exact bytes sent: keep the raw body.
    // GitHub sends payloads of up to 25 MB; pushes with many commits come close.
    const bodyLimit = 25 * 1024 * 1024;
    scope.addContentTypeParser(['application/json'], { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));

    const handle = async (source: 'github' | 'gitea', request: FastifyRequest, reply: FastifyReply) => {
      const type = header(request, 'content-type') ?? '';
      if (!/^application\/json\b/i.test(type)) {
        return reply.code(415).send({
          error: `webhook bodies must be JSON, not ${JSON.stringify(type || 'no content type')}: set the webhook's content type to application/json`,
        });
      }
      const body = request.body as Buffer;
      const eventName = source === 'github' ? header(request, 'x-github-event') : (header(request, 'x-gitea-event') ?? header(request, 'x-forgejo-event') ?? header(request, 'x-github-event'));
      const delivery = source === 'github' ? header(request, 'x-github-delivery') : (header(request, 'x-gitea-delivery') ?? header(request, 'x-forgejo-delivery') ?? header(request, 'x-github-delivery'));

      if (options.secret) {
        const hub = header(request, 'x-hub-signature-256');
        const bare = source === 'gitea' ? (header(request, 'x-gitea-signature') ?? header(request, 'x-forgejo-signature')) : undefined;
        let valid = false;
        if (bare) valid = sameSecret(bare.toLowerCase(), hexHmac(options.secret, body));
        else if (hub) valid = await github!.verify(body.toString('utf8'), hub).catch(() => false);
        if (!valid) {
          request.log.warn({ source, delivery, event: eventName }, `webhook refused: ${bare || hub ? 'wrong' : 'missing'} signature`);
          return reply.code(401).send({ error: bare || hub ? 'signature does not match the configured secret' : 'signature missing: this endpoint requires signed deliveries' });
        }
      }
      if (eventName === 'ping') return reply.code(200).send({ ok: true, pong: true });
      if (eventName !== 'push') return reply.code(202).send({ ignored: `event ${JSON.stringify(eventName ?? 'unknown')} is not handled` });
      if (delivery && !seen.add(`${source}:${delivery}`)) {
        request.log.info({ source, delivery }, 'webhook delivery already received; ignored');
        return reply.code(200).send({ duplicate: true, delivery });
      }
      let payload: unknown;
      try {
        payload = JSON.parse(body.toString('utf8'));
      } catch (err) {
        return reply.code(400).send({ error: `body is not valid JSON: ${(err as Error).message}` });
      }
      const n = normalisePush(source, payload, delivery);
      if (!n.ok) return reply.code(400).send({ error: n.reason });
      const concern = classifyPush(n.event, options.filter);
      if ('ignored' in concern) {
        const why = concern.ignored;
        request.log.info({ source, delivery, repo: n.event.repo, ref: n.event.ref }, why);
        return reply.code(202).send({ ignored: why });
      }
      options.onPush(n.event);
      return reply.code(202).send({ accepted: true, repo: n.event.repo, after: n.event.after });
    };

    const counted = (source: 'github' | 'gitea') => async (req: FastifyRequest, reply: FastifyReply) => {
      const answer = await handle(source, req, reply);
      const code = reply.statusCode;
      options.onOutcome?.(source, code === 401 ? 'refused' : code === 415 || code === 400 ? 'invalid' : code === 200 ? 'duplicate_or_ping' : 'accepted_or_ignored');
      return answer;
    };
    scope.post('/webhooks/github', { schema: { hide: true } }, counted('github'));
    scope.post('/webhooks/gitea', { schema: { hide: true } }, counted('gitea'));
  });
}
