/**
 * Git's smart HTTP protocol, served by Git's own `git http-backend` (a CGI
 * program) behind Fastify, so that the stock `git` CLI can clone, fetch and
 * push. After each push the branch heads are compared with what they were,
 * and a PushEvent is emitted per moved branch.
 */
import { spawn } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { PushEvent } from '../../core/events.js';
import { ZERO_SHA } from '../../core/events.js';
import { Serial } from '../../core/serial.js';
import { sameSecret } from '../../core/same-secret.js';

export interface GitHttpOptions {
  /** Folder holding `<repo>.git`. */
  root: string;
  /** Repositories that accept pushes; the rest are read-only (gitjobs writes them itself). */
  pushable: ReadonlySet<string>;
  /** Repositories served at all. */
  served: ReadonlySet<string>;
  onPush: (event: PushEvent) => void;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** When set, requests must carry HTTP Basic credentials whose password is this token (any user name). */
  token?: string;
  /** Which requests need the token: pushes only (default), or every request. */
  tokenFor?: 'push' | 'all';
}

function hasToken(authorization: string | undefined, token: string): boolean {
  const m = /^Basic\s+(\S+)$/i.exec(authorization ?? '');
  if (!m) return false;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const password = decoded.slice(decoded.indexOf(':') + 1);
  return sameSecret(password, token);
}

const REPO_PATH = /^\/git\/([A-Za-z0-9._-]+?)(?:\.git)?(\/.*)$/;

async function branchHeads(gitdir: string): Promise<Map<string, string>> {
  const out = await run('git', ['--git-dir', gitdir, 'for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads/']);
  const heads = new Map<string, string>();
  for (const line of out.split('\n')) {
    const [ref, oid] = line.split(' ');
    if (ref && oid) heads.set(ref, oid);
  }
  return heads;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: ${err.trim()}`))));
  });
}


export function registerGitHttp(app: FastifyInstance, options: GitHttpOptions): void {
  // Pushes one at a time per repository, so that the heads diff belongs to one push.
  const locks = new Map<string, Serial>();
  const lockFor = (repo: string) => {
    let m = locks.get(repo);
    if (!m) locks.set(repo, (m = new Serial()));
    return m;
  };

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
    // A commit as plain text at a stable address, for the dashboard's links.
    const commit = /^\/commit\/([0-9a-f]{4,40})$/.exec(rest);
    if (commit && request.method === 'GET') {
      try {
        const text = await run('git', ['--git-dir', `${options.root}/${repo}.git`, 'show', '--format=fuller', '--stat', '--patch', commit[1]!, '--']);
        return reply.type('text/plain; charset=utf-8').send(text);
      } catch {
        return reply.code(404).type('text/plain').send(`no commit ${commit[1]} in ${repo}\n`);
      }
    }
    const isPush = rest === '/git-receive-pack' || url.searchParams.get('service') === 'git-receive-pack';
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
    if (options.token && (isPush || options.tokenFor === 'all') && !hasToken(request.headers.authorization, options.token)) {
      return reply
        .code(401)
        .header('www-authenticate', 'Basic realm="gitjobs"')
        .type('text/plain')
        .send(`${isPush ? 'pushing' : 'reading'} ${repo} needs credentials: use the API token as password\n`);
    }
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
    };
    const encoding = request.headers['content-encoding'];
    if (encoding) env.HTTP_CONTENT_ENCODING = encoding;
    const protocol = request.headers['git-protocol'];
    if (typeof protocol === 'string') env.GIT_PROTOCOL = protocol;
    if (request.headers['content-length']) env.CONTENT_LENGTH = String(request.headers['content-length']);

    reply.hijack();
    const body = request.body as IncomingMessage | undefined;
    const gitdir = `${options.root}/${repo}.git`;
    const serve = () => cgi(env, body, reply);
    if (rest !== '/git-receive-pack') return serve();

    await lockFor(repo).run(async () => {
      const before = await branchHeads(gitdir);
      await serve();
      const after = await branchHeads(gitdir);
      for (const [ref, oid] of after) {
        const old = before.get(ref) ?? ZERO_SHA;
        if (old !== oid) {
          options.log.info({ repo, ref, before: old, after: oid }, 'push received');
          options.onPush({ repo, ref, before: old, after: oid, source: 'builtin' });
        }
      }
    });
  };
  app.get('/git/*', handler);
  app.post('/git/*', handler);
}

/** Runs `git http-backend` and relays its CGI answer. */
function cgi(env: NodeJS.ProcessEnv, body: IncomingMessage | undefined, reply: FastifyReply): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const res = reply.raw;
    let head = Buffer.alloc(0);
    let headersDone = false;
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      let sep = head.indexOf('\r\n\r\n');
      let sepLen = 4;
      if (sep < 0) {
        sep = head.indexOf('\n\n');
        sepLen = 2;
      }
      if (sep < 0) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, sep).toString('latin1').split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === 'status') status = parseInt(value, 10) || 200;
        else res.setHeader(name, value);
      }
      res.statusCode = status;
      const rest = head.subarray(sep + sepLen);
      if (rest.length) res.write(rest);
    });
    child.on('error', (err) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`git http-backend could not start: ${err.message}\n`);
      resolve();
    });
    child.on('close', (code) => {
      if (!headersDone) {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.write(`git http-backend failed (exit ${code}): ${stderr.trim()}\n`);
      }
      res.end();
      resolve();
    });
    if (body && typeof body.pipe === 'function') body.pipe(child.stdin);
    else child.stdin.end();
    child.stdin.on('error', () => undefined);
  });
}
