/**
 * Who may change anything: one rule for pushes to the built-in Git host and
 * for the API's changing endpoints. With a token set, a request carries it
 * (`Authorization: Bearer <token>`, or HTTP Basic with the token as
 * password, as git sends it); without one, only loopback clients may. Before
 * that, the request must be meant for this server — its `Host` one we answer
 * to, and its `Origin` (when a browser sends one) the same site — so that a
 * web page cannot drive a local gitjobs through the visitor's browser, by a
 * cross-site request or by DNS rebinding.
 */
import net from 'node:net';
import os from 'node:os';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sameSecret } from '../core/same-secret.js';

export interface AccessOptions {
  /** GITJOBS_API_TOKEN: when set, every change needs it. */
  token?: string | undefined;
  /** Host names this server is reached by besides the usual ones (`--host`, `--public-url`'s host). */
  names?: Iterable<string | undefined>;
}

export interface Refusal {
  status: 400 | 401 | 403 | 421;
  error: string;
}

/** The parts of a request the rule reads. */
export interface RequestLike {
  ip: string;
  headers: IncomingHttpHeaders;
}

export function isLoopback(ip: string): boolean {
  return /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/.test(ip);
}

const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]']);

/** `Host: [::1]:8080` → `::1`; `Example.ORG.:80` → `example.org`; undefined when it is not a host. */
export function hostName(host: string): string | undefined {
  try {
    const url = new URL(`http://${host}`);
    if (url.username || url.password || url.pathname !== '/' || url.search || url.hash || url.host.toLowerCase() !== host.toLowerCase().replace(/:80$/, '')) return undefined;
    return url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  } catch {
    return undefined;
  }
}

/** The token a request presents: a bearer token, or the password of HTTP Basic credentials. */
export function presentedToken(authorization: string | undefined): string | undefined {
  const bearer = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  if (bearer) return bearer[1];
  const basic = /^Basic\s+(\S+)$/i.exec(authorization ?? '');
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export class Access {
  readonly token: string | undefined;
  private readonly names = new Set<string>(['localhost']);

  constructor(options: AccessOptions = {}) {
    this.token = options.token || undefined;
    this.names.add(os.hostname().toLowerCase());
    for (const n of options.names ?? []) {
      if (n === undefined) continue;
      const name = n.includes('://') ? safeUrlHost(n) : hostName(n) ?? n.replace(/^\[|\]$/g, '').toLowerCase();
      if (name && !WILDCARDS.has(name)) this.names.add(name);
    }
  }

  /** Whether `Host` names this server: an IP address, localhost, this machine's name, or one we were told of. */
  answersTo(name: string): boolean {
    return net.isIP(name) !== 0 || this.names.has(name) || name.endsWith('.localhost');
  }

  /** Why a request may not change anything, or undefined when it may. */
  refusal(request: RequestLike, what = 'this'): Refusal | undefined {
    const hostHeader = first(request.headers.host);
    const name = hostHeader === undefined ? undefined : hostName(hostHeader);
    if (!name) return { status: 400, error: `${what} needs a valid Host header, not ${JSON.stringify(hostHeader ?? null)}` };
    if (!this.answersTo(name)) {
      return { status: 421, error: `this server does not answer to ${JSON.stringify(name)}: changes must name it by an IP address, localhost, ${os.hostname()} or the host of --public-url` };
    }
    const origin = first(request.headers.origin);
    if (origin !== undefined && !sameSite(origin, hostHeader!)) {
      return { status: 403, error: `cross-site request refused: Origin ${JSON.stringify(origin)} is not this server (${hostHeader})` };
    }
    if (first(request.headers['sec-fetch-site']) === 'cross-site') return { status: 403, error: 'cross-site request refused (Sec-Fetch-Site: cross-site)' };
    if (this.token) {
      const presented = presentedToken(first(request.headers.authorization));
      if (presented !== undefined && sameSecret(presented, this.token)) return undefined;
      return { status: 401, error: `${what} needs the API token: \`Authorization: Bearer <GITJOBS_API_TOKEN>\` (git: the token as password)` };
    }
    if (isLoopback(request.ip)) return undefined;
    return { status: 403, error: `${what} is refused from ${request.ip}: without GITJOBS_API_TOKEN only loopback clients may change anything; set the token to allow other hosts` };
  }
}

function safeUrlHost(url: string): string | undefined {
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  } catch {
    return undefined;
  }
}

/** Whether a browser's Origin is the site the request was sent to (same host and port; any scheme, as behind a TLS proxy). */
function sameSite(origin: string, hostHeader: string): boolean {
  if (origin === 'null') return false;
  try {
    const o = new URL(origin);
    const fallbackPort = o.protocol === 'https:' ? '443' : '80';
    const h = new URL(`${o.protocol}//${hostHeader}`);
    return o.hostname.toLowerCase() === h.hostname.toLowerCase() && (o.port || fallbackPort) === (h.port || fallbackPort);
  } catch {
    return false;
  }
}

/** The media types a browser sends cross-site without asking first (CORS "simple" bodies). */
export function isFormLike(contentType: string | undefined): boolean {
  const type = (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
  return type === 'application/x-www-form-urlencoded' || type === 'multipart/form-data';
}

/** A JSON body, or none: what the API's changing endpoints take. */
export function bodyRefusal(headers: IncomingHttpHeaders, allow: 'json' | 'message'): Refusal | undefined {
  const length = Number(first(headers['content-length']) ?? 0);
  const hasBody = length > 0 || headers['transfer-encoding'] !== undefined;
  if (!hasBody) return undefined;
  const type = (first(headers['content-type']) ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (allow === 'json') {
    if (type === 'application/json') return undefined;
    return { status: 400, error: `this endpoint takes an application/json body (or none), not ${JSON.stringify(type || 'no content type')}` };
  }
  if (!type) return { status: 400, error: 'a queue message needs a Content-Type (application/json, text/plain, application/octet-stream, ...)' };
  if (isFormLike(type)) return { status: 400, error: `a queue message may not be ${type}: that is what web forms send from other sites` };
  return undefined;
}

/**
 * An `onRequest` hook for an endpoint that changes anything: the access
 * rule, then the body's type, checked before the body is read.
 */
export function changeGuard(access: Access, body: 'json' | 'message' = 'json') {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const refused = access.refusal(request) ?? bodyRefusal(request.headers, body);
    if (!refused) return;
    if (refused.status === 401) void reply.header('www-authenticate', 'Bearer');
    request.log.warn({ ip: request.ip, method: request.method, url: request.url.split('?', 1)[0], status: refused.status }, `change refused: ${refused.error}`);
    await reply.code(refused.status).send({ error: refused.error });
  };
}
