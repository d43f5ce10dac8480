/**
 * The JSON API: runs and tasks read from tracking (the system of record),
 * cancellation and re-runs. Routes validate, call the core and answer.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { changeGuard, type Access } from './access.js';
import type { CancelOutcome } from '../collector/collector.js';
import type { RerunOptions, RerunOutcome } from '../dispatcher/dispatcher.js';
import { openRunView, readResultJson, readResultText, repoTree, type OpenedRunView } from '../core/run-reader.js';
import type { TrackingIndex } from '../core/tracking-index.js';
import type { GitStore } from '../core/ports.js';
import { isValidId } from '../core/ids.js';
import { isRunFinal, progress } from '../core/run.js';
import { diffRuns } from '../core/run-diff.js';
import { sidesOf } from './run-sides.js';

export interface ApiOptions {
  store: GitStore;
  trackingRepo: string;
  doneRepo: string;
  /** Run summaries and run commits, read from tracking incrementally. */
  index: TrackingIndex;
  cancel: (runId: string, reason: string) => Promise<CancelOutcome>;
  rerun: (runId: string, options: RerunOptions) => Promise<RerunOutcome>;
  /** Who may change anything (access.ts): the API token when one is set, else loopback clients. */
  access: Access;
  /** Where a tracking commit can be seen: the built-in host's plain text, or the forge's commit page. */
  commitUrl: (sha: string) => string;
}

const RUN_PARAMS = { type: 'object', properties: { run: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' } }, required: ['run'] } as const;
const PROGRESS = { type: 'object', properties: { done: { type: 'integer' }, failed: { type: 'integer' }, total: { type: 'integer' } } } as const;

/**
 * GET /api/runs/RUN's answer, a batch of task records at a time: the JSON
 * one JSON.stringify of { repo, tracking, run, tasks, progress, commits }
 * would give, without the whole of it (nor every record) in memory at once.
 * Records go without their stdout (GET .../logs/TASK has it).
 */
export function* runViewJson(repo: string, tracking: string, opened: OpenedRunView, commits?: unknown[]): Generator<string> {
  yield `{"repo":${JSON.stringify(repo)},"tracking":${JSON.stringify(tracking)},"run":${JSON.stringify(opened.run)},"tasks":[`;
  const counted = { done: 0, failed: 0, total: 0, running: 0 };
  let first = true;
  for (const batch of opened.batches()) {
    const p = progress(batch);
    counted.done += p.done;
    counted.failed += p.failed;
    counted.total += p.total;
    counted.running += batch.filter((t) => t.state === 'running').length;
    if (!batch.length) continue;
    // The records are this answer's own (made for it batch by batch): stdout is dropped from them rather than copied
    // around (a copy of an object of twenty fields costs V8 several times what the object does).
    for (const t of batch) t.stdout = undefined;
    yield (first ? '' : ',') + batch.map((t) => JSON.stringify(t)).join(',');
    first = false;
  }
  yield `],"progress":${JSON.stringify(counted)}${commits ? `,"commits":${JSON.stringify(commits)}` : ''}}`;
}

export function registerApi(app: FastifyInstance, options: ApiOptions): void {
  const { store, trackingRepo, index } = options;
  const source = repoTree(store, trackingRepo);
  const guard = changeGuard(options.access);

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
                  properties: { id: { type: 'string' }, project: { type: 'string' }, file: { type: 'string' }, state: { type: 'string' }, todoCommit: { type: 'string' }, createdAt: { type: 'string' }, finishedAt: { type: 'string' }, rerunOf: { type: 'string' }, scheduledFor: { type: 'string' }, progress: PROGRESS },
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

  app.get<{ Params: { run: string }; Querystring: { tasks?: boolean; commits?: boolean } }>(
    '/api/runs/:run',
    {
      schema: {
        summary: 'A run, its tasks and its commits; with tasks=false, the run and its progress only (cheap to poll)',
        params: RUN_PARAMS,
        querystring: { type: 'object', properties: { tasks: { type: 'boolean', default: true }, commits: { type: 'boolean', default: true } } },
      },
    },
    async (request, reply) => {
      const runId = request.params.run;
      if (!isValidId(runId)) return reply.code(400).send({ error: `not a run id: ${JSON.stringify(runId)}` });
      if (request.query.tasks === false) {
        // From the index: only what changed in the run's folder since the last look is read.
        const { head, summary, record } = await index.summary(runId);
        if (!summary || !record) return reply.code(404).send({ error: `no run ${runId} in ${trackingRepo}` });
        const { tasks, ...run } = record;
        return { repo: trackingRepo, tracking: head, run, progress: { ...summary.progress, running: summary.taskStates.running ?? 0 }, taskStates: summary.taskStates };
      }
      const head = await store.head(trackingRepo);
      const opened = head && (await openRunView(source, head, runId));
      if (!opened) return reply.code(404).send({ error: `no run ${runId} in ${trackingRepo}` });
      // The run's commits, oldest first: each transition links to its commit.
      const commits = request.query.commits === false ? undefined : (await index.commitsOf(runId, head, isRunFinal(opened.run))).map((c) => ({ ...c, url: options.commitUrl(c.commit) }));
      void reply.type('application/json; charset=utf-8');
      return Readable.from(runViewJson(trackingRepo, head, opened, commits));
    },
  );

  app.get<{ Params: { run: string } }>(
    '/api/runs/:run/result',
    { schema: { summary: "A finished run's result, from the done repository: result.json and result.txt", params: RUN_PARAMS } },
    async (request, reply) => {
      const runId = request.params.run;
      if (!isValidId(runId)) return reply.code(400).send({ error: `not a run id: ${JSON.stringify(runId)}` });
      const head = await store.head(options.doneRepo);
      const text = head && (await readResultText(repoTree(store, options.doneRepo), head, runId));
      if (!head || text === undefined) return reply.code(404).send({ error: `no result for ${runId} in ${options.doneRepo} (yet)` });
      const json = await readResultJson(repoTree(store, options.doneRepo), head, runId);
      return { repo: options.doneRepo, done: head, result: json, text };
    },
  );

  app.post<{ Params: { run: string }; Body: { reason?: string } | undefined }>(
    '/api/runs/:run/cancel',
    {
      onRequest: guard,
      schema: {
        summary: 'Cancel a run (bearer token when GITJOBS_API_TOKEN is set)',
        params: RUN_PARAMS,
        security: [{ bearer: [] }],
        response: { 202: { type: 'object', properties: { cancelled: { type: 'boolean' }, tasks: { type: 'integer' } } } },
      },
    },
    async (request, reply) => {
      if (!isValidId(request.params.run)) return reply.code(400).send({ error: `not a run id: ${JSON.stringify(request.params.run)}` });
      const reason = typeof request.body?.reason === 'string' && request.body.reason.trim() ? request.body.reason.trim().slice(0, 200) : 'cancelled through the API';
      const r = await options.cancel(request.params.run, reason);
      if (r.outcome === 'unknown') return reply.code(404).send({ error: `no run ${request.params.run}` });
      if (r.outcome === 'finished') return reply.code(409).send({ error: `run ${request.params.run} is already ${r.state}` });
      return reply.code(202).send({ cancelled: true, tasks: r.tasks });
    },
  );

  app.post<{ Params: { run: string }; Body: RerunOptions | undefined }>(
    '/api/runs/:run/rerun',
    {
      onRequest: guard,
      schema: {
        summary:
          'Run a finished run again as a new run: same project file and todo commit, current config (with {"pinned": true}, the config commit the run had); with {"failed": true} only the tasks that did not succeed run, the others are recorded as reused; {"tasks": [...], "config": SHA} runs some tasks at a config commit (bisect); {"noCache": true} takes no result from the result cache (bearer token when GITJOBS_API_TOKEN is set)',
        params: RUN_PARAMS,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            failed: { type: 'boolean' },
            pinned: { type: 'boolean' },
            noCache: { type: 'boolean' },
            config: { type: 'string', pattern: '^[0-9a-f]{40}$' },
            tasks: { type: 'array', maxItems: 10_000, items: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' } },
          },
        },
        security: [{ bearer: [] }],
        response: {
          202: { type: 'object', properties: { run: { type: 'string' }, rerunOf: { type: 'string' }, outcome: { type: 'string', enum: ['queued', 'rejected'] }, tasks: { type: 'integer' }, reused: { type: 'integer' }, error: { type: 'string' } } },
        },
      },
    },
    async (request, reply) => {
      const runId = request.params.run;
      if (!isValidId(runId)) return reply.code(400).send({ error: `not a run id: ${JSON.stringify(runId)}` });
      const body = request.body ?? {};
      const r = await options.rerun(runId, { failed: body.failed === true, pinned: body.pinned === true, ...(body.noCache === true ? { noCache: true } : {}), ...(body.config ? { config: body.config } : {}), ...(body.tasks ? { tasks: body.tasks } : {}) });
      if (r.outcome === 'unknown') return reply.code(404).send({ error: `no run ${runId} in ${trackingRepo}` });
      if (r.outcome === 'unfinished') return reply.code(409).send({ error: `run ${runId} is still ${r.state}; it can be re-run once it has finished (or cancel it first)` });
      if (r.outcome === 'duplicate') return reply.code(409).send({ error: `run ${r.run} already exists` });
      if (r.outcome === 'refused') return reply.code(400).send({ error: r.error });
      if (r.outcome === 'nothing-failed') return reply.code(409).send({ error: `every task of run ${runId} succeeded: nothing to re-run (re-run it whole without "failed")` });
      return reply.code(202).send({ run: r.run, rerunOf: runId, outcome: r.outcome, ...(r.outcome === 'queued' ? { tasks: r.tasks, ...(r.reused ? { reused: r.reused } : {}) } : { error: r.outcome === 'rejected' ? r.error : `recorded as ${r.outcome}` }) });
    },
  );

  app.get<{ Params: { run: string; other: string } }>(
    '/api/runs/:run/diff/:other',
    {
      schema: {
        summary: 'Two runs task by task: state, exit code, output (blob id), image, and duration, and which of these changed',
        params: { type: 'object', properties: { run: RUN_PARAMS.properties.run, other: RUN_PARAMS.properties.run }, required: ['run', 'other'] },
      },
    },
    async (request, reply) => {
      const { run, other } = request.params;
      const head = await store.head(trackingRepo);
      const [a, b] = head ? await Promise.all([sidesOf(store, trackingRepo, head, run), sidesOf(store, trackingRepo, head, other)]) : [];
      if (!a || !b) return reply.code(404).send({ error: `no run ${!a ? run : other} in ${trackingRepo}` });
      return { repo: trackingRepo, tracking: head, ...diffRuns({ id: run, tasks: a }, { id: other, tasks: b }) };
    },
  );
}
