/**
 * Git's smart HTTP protocol, served by Git's own `git http-backend` (a CGI
 * program, cgi.ts) behind Fastify, so that the stock `git` CLI can clone,
 * fetch and push. Pushes follow the access rule (server/access.ts); with a
 * remote forge, every request does. After each push the branch heads are
 * compared with what they were, and a PushEvent is emitted per moved branch.
 */
import { spawn } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { PushEvent } from '../../core/events.js';
import { ReceiveHook } from '../../push/builtin-hook.js';
import { Access } from '../../server/access.js';
import { CGI_LIMITS, runCgi, type CgiLimits } from './cgi.js';

export interface GitHttpOptions {
  /** Folder holding `<repo>.git`. */
  root: string;
  /** Repositories that accept pushes; the rest are read-only (gitjobs writes them itself). */
  pushable: ReadonlySet<string>;
  /** Repositories served at all. */
  served: ReadonlySet<string>;
  onPush: (event: PushEvent) => void;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Who may push (and, with `guard: 'all'`, read): the API token, or loopback clients without one. */
  access?: Access;
  /** Which requests the access rule applies to: pushes (default), or every request (the repositories mirror a private forge). */
  guard?: 'push' | 'all';
  /** Idle and total time limits of one request. */
  limits?: CgiLimits;
  /** The largest pack one push may send (receive.maxInputSize), in bytes. */
  maxPushBytes?: number;
  /** Bytes of a commit shown at /commit/<sha>; the rest is cut with a marker. */
  commitViewBytes?: number;
}

export const MAX_PUSH_BYTES = 128 * 1024 * 1024;
const COMMIT_VIEW_BYTES = 1024 * 1024;

const REPO_PATH = /^\/git\/([A-Za-z0-9._-]+?)(?:\.git)?(\/.*)$/;

/**
 * Whether a request is a push: any path ending in `git-receive-pack`, or a
 * `service=git-receive-pack` among the query's parameters, however repeated
 * or spelled; Git refusing an odd one is not relied upon.
 */
export function isPushRequest(pathname: string, search: URLSearchParams): boolean {
  let path = pathname;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    /* keep it as sent */
  }
  if (/git-receive-pack\/*$/i.test(path) || /git-receive-pack\/*$/i.test(pathname)) return true;
  return search.getAll('service').some((s) => /receive-pack/i.test(s));
}

export function registerGitHttp(app: FastifyInstance, options: GitHttpOptions): void {
  const hook = new ReceiveHook(options.onPush, options.log);
  const access = options.access ?? new Access();

  // Git's request bodies are handed to the CGI program as they come.
  app.addContentTypeParser(/^application\/x-git-/, (_req, payload, done) => done(null, payload));

  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const url = new URL(request.url, 'http://localhost');
    const m = REPO_PATH.exec(url.pathname);
    if (!m || !options.served.has(m[1]!)) {
      return reply.code(404).type('text/plain').send(`no repository at ${url.pathname}\n`);
    }
    const repo = m[1]!;
    const rest = m[2]!;
    const isPush = isPushRequest(url.pathname, url.searchParams);
    const refuse = (what: string) => {
      const refused = access.refusal(request, what);
      if (!refused) return false;
      options.log.warn({ repo, ip: request.ip, status: refused.status }, `git request refused: ${refused.error}`);
      if (refused.status === 401) void reply.header('www-authenticate', 'Basic realm="gitjobs"');
      void reply.code(refused.status).type('text/plain').send(`${refused.error}\n`);
      return true;
    };
    if (options.guard === 'all' && !isPush && refuse(`reading ${repo}`)) return reply;
    // A commit as plain text at a stable address, for the dashboard's links.
    const commit = /^\/commit\/([0-9a-f]{4,40})$/.exec(rest);
    if (commit && request.method === 'GET') {
      reply.hijack();
      await showCommit(`${options.root}/${repo}.git`, commit[1]!, reply.raw, options.commitViewBytes ?? COMMIT_VIEW_BYTES);
      return;
    }
    if (isPush && !options.pushable.has(repo)) {
      return reply
        .code(403)
        .type('text/plain')
        .send(
          options.pushable.size
            ? `${repo} is written by gitjobs itself and does not accept pushes; push projects to ${[...options.pushable].join(' or ')}\n`
            : `${repo} is a read-only mirror here; push to the forge that hosts it\n`,
        );
    }
    if (isPush && refuse(`pushing to ${repo}`)) return reply;
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: options.root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: `/${repo}.git${rest}`,
      REQUEST_METHOD: request.method,
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: request.headers['content-type'] ?? '',
      REMOTE_ADDR: request.ip,
      REMOTE_USER: 'gitjobs',
      GIT_HTTP_MAX_REQUEST_BUFFER: '100M',
      // A push sends at most this much pack data; receive-pack refuses the rest.
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'receive.maxInputSize',
      GIT_CONFIG_VALUE_0: String(options.maxPushBytes ?? MAX_PUSH_BYTES),
    };
    const encoding = request.headers['content-encoding'];
    if (encoding) env.HTTP_CONTENT_ENCODING = encoding;
    const protocol = request.headers['git-protocol'];
    if (typeof protocol === 'string') env.GIT_PROTOCOL = protocol;
    if (request.headers['content-length']) env.CONTENT_LENGTH = String(request.headers['content-length']);

    reply.hijack();
    const body = request.body as IncomingMessage | undefined;
    const gitdir = `${options.root}/${repo}.git`;
    const serve = async () => {
      const outcome = await runCgi(env, body, reply.raw, options.limits ?? CGI_LIMITS);
      if (outcome.ended) options.log.warn({ repo, ip: request.ip, ended: outcome.ended, push: isPush }, 'git request ended early; its git processes were stopped');
    };
    if (!(isPush && request.method === 'POST')) return serve();
    await hook.around(repo, gitdir, serve);
  };
  app.get('/git/*', handler);
  app.post('/git/*', handler);
}

/** `git show` of one commit, streamed and cut at `cap` bytes: a huge file in a commit never fills memory. */
function showCommit(gitdir: string, sha: string, res: import('node:http').ServerResponse, cap: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn('git', ['--git-dir', gitdir, 'show', '--format=fuller', '--stat', '--patch', sha, '--'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let sent = 0;
    let started = false;
    const start = () => {
      if (started) return;
      started = true;
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
    };
    child.stdout.on('data', (chunk: Buffer) => {
      start();
      if (sent >= cap) return;
      const part = chunk.subarray(0, cap - sent);
      sent += part.length;
      res.write(part);
      if (sent >= cap) {
        res.write(`\n[cut at ${cap} bytes]\n`);
        child.kill('SIGKILL');
      }
    });
    res.on('close', () => child.kill('SIGKILL'));
    child.on('error', () => undefined);
    child.on('close', (code) => {
      if (!started) {
        if (!res.headersSent) res.writeHead(code === 0 ? 200 : 404, { 'content-type': 'text/plain; charset=utf-8' });
        if (code !== 0) res.write(`no commit ${sha} in ${gitdir.split('/').pop()!.replace(/\.git$/, '')}\n`);
      }
      res.end();
      resolve();
    });
  });
}
