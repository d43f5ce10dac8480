/**
 * Prometheus metrics (prom-client) on a registry of this process's own:
 * runs and tasks by state (read from tracking when scraped), task durations
 * and queue waits, transition commit latency, queue depths, workers, and
 * webhook deliveries by outcome.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RunObserver } from '../core/ports.js';
import type { WorkQueue } from '../core/channels.js';
import type { TrackingIndex } from '../core/tracking-index.js';
import type { TaskRecord } from '../core/task.js';

export interface MetricsOptions {
  /** Runs as tracking records them, read incrementally. */
  index: TrackingIndex;
  queueStats: (queue: WorkQueue) => Promise<{ messages: number; consumers: number }>;
}

export class Metrics implements RunObserver {
  readonly registry = new Registry();
  private readonly taskDuration = new Histogram({ name: 'gitjobs_task_duration_seconds', help: 'Run time of finished task attempts', labelNames: ['state'], buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800], registers: [this.registry] });
  private readonly queueWait = new Histogram({ name: 'gitjobs_task_queue_wait_seconds', help: 'From queued to running', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300], registers: [this.registry] });
  private readonly commitLatency = new Histogram({ name: 'gitjobs_transition_commit_seconds', help: 'Time to commit one transition', labelNames: ['repo'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [this.registry] });
  private readonly transitions = new Counter({ name: 'gitjobs_transitions_total', help: 'Task transitions committed', labelNames: ['to'], registers: [this.registry] });
  private readonly finished = new Counter({ name: 'gitjobs_runs_finished_total', help: 'Runs finished', labelNames: ['state'], registers: [this.registry] });
  readonly webhooks = new Counter({ name: 'gitjobs_webhook_deliveries_total', help: 'Webhook deliveries by outcome', labelNames: ['source', 'outcome'], registers: [this.registry] });
  /** How many attempts the collector holds by heartbeats (set once the collector exists). */
  leasesHeld: (() => number) | undefined;

  constructor(options: MetricsOptions) {
    // One read of tracking serves both gauges of a scrape (prom-client collects them together); the next scrape reads again.
    let snapshot: Promise<{ runs: Map<string, number>; tasks: Map<string, number> }> | undefined;
    const read = () =>
      (snapshot ??= (async () => {
        const r = new Map<string, number>();
        const t = new Map<string, number>();
        for (const run of (await options.index.runs()).runs) {
          r.set(run.state, (r.get(run.state) ?? 0) + 1);
          for (const [state, n] of Object.entries(run.taskStates)) t.set(state, (t.get(state) ?? 0) + n);
        }
        return { runs: r, tasks: t };
      })().finally(() => (snapshot = undefined)));
    for (const what of ['runs', 'tasks'] as const) {
      new Gauge({
        name: `gitjobs_${what}`,
        help: `${what === 'runs' ? 'Runs' : 'Tasks'} by state, as tracking records them`,
        labelNames: ['state'],
        registers: [this.registry],
        async collect() {
          this.reset();
          for (const [state, n] of (await read())[what]) this.set({ state }, n);
        },
      });
    }
    new Gauge({
      name: 'gitjobs_queue_messages',
      help: 'Messages waiting in each queue',
      labelNames: ['queue'],
      registers: [this.registry],
      async collect() {
        for (const q of ['todo', 'done', 'large', 'dead'] as const) this.set({ queue: q }, (await options.queueStats(q).catch(() => ({ messages: NaN }))).messages);
      },
    });
    const leases = () => this.leasesHeld?.();
    new Gauge({
      name: 'gitjobs_leases_held',
      help: 'Running attempts held by heartbeats (acked at start) that this collector watches',
      registers: [this.registry],
      collect() {
        this.set(leases() ?? 0);
      },
    });
    new Gauge({
      name: 'gitjobs_workers',
      help: 'Worker consumers on the TODO queue',
      registers: [this.registry],
      async collect() {
        this.set((await options.queueStats('todo').catch(() => ({ consumers: NaN }))).consumers);
      },
    });
  }

  /** `GET /metrics`, in Prometheus' text format. */
  register(app: FastifyInstance): void {
    app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => reply.type(this.registry.contentType).send(await this.registry.metrics()));
  }

  taskChanged(change: { task: TaskRecord }): void {
    const t = change.task;
    this.transitions.inc({ to: t.state });
    if (t.state === 'running' && t.startedAt && t.queuedAt) this.queueWait.observe(Math.max(0, (Date.parse(t.startedAt) - Date.parse(t.notBefore ?? t.queuedAt)) / 1000));
    if ((t.state === 'succeeded' || t.state === 'failed') && t.durationMs !== undefined) this.taskDuration.observe({ state: t.state }, t.durationMs / 1000);
  }

  committed(repo: string, ms: number): void {
    this.commitLatency.observe({ repo }, ms / 1000);
  }

  runFinished(run: { state: string }): void {
    this.finished.inc({ state: run.state });
  }
}
