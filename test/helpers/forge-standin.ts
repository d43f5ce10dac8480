/**
 * A stand-in for GitHub and Gitea, which cannot be reached from here: a real
 * HTTP server on loopback. Its Git side is the built-in Git host (real smart
 * HTTP, every repository pushable, token required); its API side answers
 * the REST calls gitjobs makes and records each one (method, path, auth
 * header, body) for the test to check.
 */
import fs from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Access } from '../../src/server/access.js';
import { BuiltinForge } from '../../src/adapters/builtin/forge.js';
import { LocalGitStore } from '../../src/adapters/git/local-store.js';
import { DEFAULT_SETTINGS } from '../../src/core/settings.js';
import { rmTree, tmpdir } from './stack.js';

export interface RecordedCall {
  method: string;
  path: string;
  auth: string | undefined;
  body: unknown;
}

export interface StandIn {
  url: string;
  gitBaseUrl: string;
  owner: string;
  token: string;
  store: LocalGitStore;
  forge: BuiltinForge;
  calls: RecordedCall[];
  hooks: Map<string, { id: number; config: { url: string; secret?: string; content_type?: string }; events: string[] }[]>;
  /** A clone URL with the token in it, for the git CLI. */
  authedUrl(repo: string): string;
  close(): Promise<void>;
}

export async function startStandIn(options: { owner?: string; token?: string; seed?: boolean } = {}): Promise<StandIn> {
  const owner = options.owner ?? 'alice';
  const token = options.token ?? 'test-token-123';
  const root = tmpdir('standin');
  const store = new LocalGitStore(root);
  const forge = new BuiltinForge(store, DEFAULT_SETTINGS.repos, { pushable: 'all', access: new Access({ token }), guard: 'all' });
  if (options.seed !== false) await forge.ensureRepos();
  const calls: RecordedCall[] = [];
  const hooks: StandIn['hooks'] = new Map();
  let hookId = 1;
  const app: FastifyInstance = Fastify();
  forge.register(app);
  let base = '';

  const authorised = (req: FastifyRequest, reply: FastifyReply, scheme: 'token' | 'bearer-or-token') => {
    const auth = req.headers.authorization;
    calls.push({ method: req.method, path: req.url, auth, body: req.body ?? null });
    const ok = scheme === 'token' ? auth === `token ${token}` : auth === `token ${token}` || auth === `bearer ${token}` || auth === `Bearer ${token}`;
    if (!ok) void reply.code(401).send({ message: 'Bad credentials' });
    return ok;
  };
  const repoJson = (name: string) => ({ name, full_name: `${owner}/${name}`, clone_url: `${base}/git/${name}.git`, empty: !fs.existsSync(`${root}/${name}.git/refs/heads/main`) && !packedMain(root, name), size: 0 });

  for (const [prefix, scheme] of [['/api/v1', 'token'], ['/gh', 'bearer-or-token']] as const) {
    app.get(`${prefix}/user`, async (req, reply) => (authorised(req, reply, scheme) ? { login: owner, id: 1 } : reply));
    app.get<{ Params: { o: string; r: string } }>(`${prefix}/repos/:o/:r`, async (req, reply) => {
      if (!authorised(req, reply, scheme)) return reply;
      if (req.params.o !== owner || !store.exists(req.params.r)) return reply.code(404).send({ message: 'Not Found' });
      return repoJson(req.params.r);
    });
    app.post<{ Body: { name: string } }>(`${prefix}/user/repos`, async (req, reply) => {
      if (!authorised(req, reply, scheme)) return reply;
      await store.create(req.body.name);
      return reply.code(201).send(repoJson(req.body.name));
    });
    app.get<{ Params: { o: string; r: string } }>(`${prefix}/repos/:o/:r/hooks`, async (req, reply) => (authorised(req, reply, scheme) ? (hooks.get(req.params.r) ?? []) : reply));
    app.post<{ Params: { o: string; r: string }; Body: { config: { url: string }; events: string[] } }>(`${prefix}/repos/:o/:r/hooks`, async (req, reply) => {
      if (!authorised(req, reply, scheme)) return reply;
      const hook = { id: hookId++, config: req.body.config, events: req.body.events };
      hooks.set(req.params.r, [...(hooks.get(req.params.r) ?? []), hook]);
      return reply.code(201).send(hook);
    });
    app.patch<{ Params: { o: string; r: string; id: string }; Body: { config: { url: string }; events: string[] } }>(`${prefix}/repos/:o/:r/hooks/:id`, async (req, reply) => {
      if (!authorised(req, reply, scheme)) return reply;
      const hook = (hooks.get(req.params.r) ?? []).find((h) => h.id === Number(req.params.id));
      if (!hook) return reply.code(404).send({ message: 'Not Found' });
      Object.assign(hook, { config: req.body.config, events: req.body.events });
      return hook;
    });
    app.post<{ Params: { o: string; r: string; sha: string } }>(`${prefix}/repos/:o/:r/statuses/:sha`, async (req, reply) => {
      if (!authorised(req, reply, scheme)) return reply;
      return reply.code(201).send({ id: calls.length, ...(req.body as object) });
    });
  }

  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  forge.setBaseUrl(base);
  return {
    url: base,
    gitBaseUrl: `${base}/git`,
    owner,
    token,
    store,
    forge,
    calls,
    hooks,
    authedUrl: (repo) => `${base.replace('http://', `http://git:${token}@`)}/git/${repo}.git`,
    close: async () => {
      await app.close();
      // It waits for a repack its first commits scheduled, which would write packs while the folder is removed.
      await store.close();
      rmTree(root);
    },
  };
}

function packedMain(root: string, name: string): boolean {
  const packed = `${root}/${name}.git/packed-refs`;
  return fs.existsSync(packed) && fs.readFileSync(packed, 'utf8').includes('refs/heads/main');
}
