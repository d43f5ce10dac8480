/**
 * The JSON API: runs and tasks read from tracking (the system of record),
 * cancellation and re-runs. Routes validate, call the core and answer.
 */
import { sameSecret } from '../core/same-secret.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CancelOutcome } from '../collector/collector.js';
import type { RerunOutcome } from '../dispatcher/dispatcher.js';
import { readRunView, repoTree } from '../core/run-reader.js';
import type { TrackingIndex } from '../core/tracking-index.js';
import type { GitStore } from '../core/ports.js';
import { isValidId } from '../core/ids.js';
import { isRunFinal } from '../core/run.js';

export interface ApiOptions {
  store: GitStore;
  trackingRepo: string;
  /** Run summaries and run commits, read from tracking incrementally. */
  index: TrackingIndex;
  cancel: (runId: string, reason: string) => Promise<CancelOutcome>;
  rerun: (runId: string) => Promise<RerunOutcome>;
  /** Bearer token for endpoints that change anything; without one, only loopback clients may. */
  apiToken: string | undefined;
  /** Where a tracking commit can be seen: the built-in host's plain text, or the forge's commit page. */
  commitUrl: (sha: string) => string;
}

const RUN_PARAMS = { type: 'object', properties: { run: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' } }, required: ['run'] } as const;
const PROGRESS = { type: 'object', properties: { done: { type: 'integer' }, failed: { type: 'integer' }, total: { type: 'integer' } } } as const;

/** Endpoints that change anything: the bearer token when one is set, else loopback only. */
export function authorise(request: FastifyRequest, reply: FastifyReply, apiToken: string | undefined): boolean {
  if (apiToken) {
    const m = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
    if (m && sameSecret(m[1]!, apiToken)) return true;
    void reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'this endpoint needs `Authorization: Bearer <GITJOBS_API_TOKEN>`' });
    return false;
  }
  if (/^(127\.|::1$|::ffff:127\.)/.test(request.ip)) return true;
  void reply.code(403).send({ error: 'set GITJOBS_API_TOKEN to allow changes from other hosts' });
  return false;
}

export function registerApi(app: FastifyInstance, options: ApiOptions): void {
  const { store, trackingRepo, index } = options;
  const source = repoTree(store, trackingRepo);

  app.get(
    '/api/runs',
    {
      schema: {
        summary: 'Runs, as the tracking repository records them',
        response: {
          200: {
            type: 'object',
            properties: {
              tracking: { type: 'string' },
              runs: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { id: { type: 'string' }, project: { type: 'string' }, file: { type: 'string' }, state: { type: 'string' }, todoCommit: { type: 'string' }, createdAt: { type: 'string' }, finishedAt: { type: 'string' }, rerunOf: { type: 'string' }, progress: PROGRESS },
                },
              },
            },
          },
        },
      },
    },
    async () => {
      const { head, runs } = await index.runs();
      if (!head) return { runs: [] };
      return { tracking: head, runs: runs.map(({ taskStates, ...r }) => r) };
    },
  );

  app.get<{ Params: { run: string } }>('/api/runs/:run', { schema: { summary: 'A run, its tasks and its commits', params: RUN_PARAMS } }, async (request, reply) => {
    if (!isValidId(request.params.run)) return reply.code(400).send({ error: `not a run id: ${JSON.stringify(request.params.run)}` });
    const head = await store.head(trackingRepo);
    const view = head && (await readRunView(source, head, request.params.run));
    if (!view) return reply.code(404).send({ error: `no run ${request.params.run} in ${trackingRepo}` });
    // The run's commits, oldest first: each transition links to its commit.
    const commits = (await index.commitsOf(request.params.run, head, isRunFinal(view.run))).map((c) => ({ ...c, url: options.commitUrl(c.commit) }));
    return { repo: trackingRepo, tracking: head, ...view, tasks: view.tasks.map(({ stdout, ...t }) => t), commits };
  });

  app.post<{ Params: { run: string }; Body: { reason?: string } | undefined }>(
    '/api/runs/:run/cancel',
    {
      schema: {
        summary: 'Cancel a run (bearer token when GITJOBS_API_TOKEN is set)',
        params: RUN_PARAMS,
        security: [{ bearer: [] }],
        response: { 202: { type: 'object', properties: { cancelled: { type: 'boolean' }, tasks: { type: 'integer' } } } },
      },
    },
    async (request, reply) => {
    if (!authorise(request, reply, options.apiToken)) return reply;
    if (!isValidId(request.params.run)) return reply.code(400).send({ error: `not a run id: ${JSON.stringify(request.params.run)}` });
    const reason = typeof request.body?.reason === 'string' && request.body.reason.trim() ? request.body.reason.trim().slice(0, 200) : 'cancelled through the API';
    const r = await options.cancel(request.params.run, reason);
    if (r.outcome === 'unknown') return reply.code(404).send({ error: `no run ${request.params.run}` });
    if (r.outcome === 'finished') return reply.code(409).send({ error: `run ${request.params.run} is already ${r.state}` });
    return reply.code(202).send({ cancelled: true, tasks: r.tasks });
  },
  );

  app.post<{ Params: { run: string } }>(
    '/api/runs/:run/rerun',
    {
      schema: {
        summary: 'Run a finished run again as a new run: same project file and todo commit, current config (bearer token when GITJOBS_API_TOKEN is set)',
        params: RUN_PARAMS,
        security: [{ bearer: [] }],
        response: {
          202: { type: 'object', properties: { run: { type: 'string' }, rerunOf: { type: 'string' }, outcome: { type: 'string', enum: ['queued', 'rejected'] }, tasks: { type: 'integer' }, error: { type: 'string' } } },
        },
      },
    },
    async (request, reply) => {
      if (!authorise(request, reply, options.apiToken)) return reply;
      const runId = request.params.run;
      if (!isValidId(runId)) return reply.code(400).send({ error: `not a run id: ${JSON.stringify(runId)}` });
      const r = await options.rerun(runId);
      if (r.outcome === 'unknown') return reply.code(404).send({ error: `no run ${runId} in ${trackingRepo}` });
      if (r.outcome === 'unfinished') return reply.code(409).send({ error: `run ${runId} is still ${r.state}; it can be re-run once it has finished (or cancel it first)` });
      if (r.outcome === 'duplicate') return reply.code(409).send({ error: `run ${r.run} already exists` });
      return reply.code(202).send({ run: r.run, rerunOf: runId, outcome: r.outcome, ...(r.outcome === 'queued' ? { tasks: r.tasks } : { error: r.error }) });
    },
  );
}
