/**
 * `GET /api/events`: every transition once it is durable in tracking
 * (`task`), and each run's state and progress (`run`), for the dashboard
 * and the CLI. `?run=RUN` keeps to one run. A run's progress goes out at
 * most every PROGRESS_EVERY_MS (the latest wins): a 10,000-task run tells
 * a watcher a few times a second, not 20,000 times.
 */
import type { FastifyInstance } from 'fastify';
import { isValidId } from '../core/ids.js';
import type { RunObserver } from '../core/ports.js';
import type { TaskRecord } from '../core/task.js';
import { openStream, type Stream } from './sse.js';

const PROGRESS_EVERY_MS = 200;

type Progress = { done: number; failed: number; total: number };

export class EventHub implements RunObserver {
  private readonly streams = new Map<Stream, string | undefined>();
  /** Progress waiting to go out, per run. */
  private readonly pending = new Map<string, Progress>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  private send(run: string, event: string, data: unknown): void {
    for (const [stream, only] of this.streams) if (only === undefined || only === run) stream.send(event, data);
  }

  taskChanged(change: { run: string; task: TaskRecord; commit: string; subject: string }): void {
    const t = change.task;
    const summary = { id: t.id, state: t.state, attempts: t.attempts, maxAttempts: t.maxAttempts, exitCode: t.exitCode, durationMs: t.durationMs, worker: t.worker, error: t.error };
    this.send(change.run, 'task', { run: change.run, task: summary, commit: change.commit, subject: change.subject });
  }

  runQueued(run: { id: string; taskCount: number }): void {
    this.send(run.id, 'run', { run: run.id, state: 'queued', progress: { done: 0, failed: 0, total: run.taskCount } });
  }

  runRejected(run: { id: string; error?: string }): void {
    this.send(run.id, 'run', { run: run.id, state: 'rejected', error: run.error });
  }

  runProgress(run: { id: string }, progress: Progress): void {
    this.pending.set(run.id, progress);
    if (this.timers.has(run.id)) return;
    this.timers.set(
      run.id,
      setTimeout(() => {
        this.timers.delete(run.id);
        this.flush(run.id);
      }, PROGRESS_EVERY_MS),
    );
  }

  private flush(run: string): void {
    const progress = this.pending.get(run);
    if (!progress) return;
    this.pending.delete(run);
    this.send(run, 'run', { run, state: 'running', progress });
  }

  runFinished(run: { id: string; state: string }, progress: Progress): void {
    clearTimeout(this.timers.get(run.id));
    this.timers.delete(run.id);
    this.pending.delete(run.id);
    this.send(run.id, 'run', { run: run.id, state: run.state, progress });
  }

  register(app: FastifyInstance): void {
    app.get<{ Querystring: { run?: string } }>(
      '/api/events',
      { schema: { summary: 'Transitions and run progress as they are committed (Server-Sent Events: task, run); ?run=RUN for one run', querystring: { type: 'object', properties: { run: { type: 'string' } } } } },
      async (request, reply) => {
        const only = request.query.run;
        if (only !== undefined && !isValidId(only)) return reply.code(400).send({ error: `not a run id: ${JSON.stringify(only)}` });
        const stream = openStream(reply);
        this.streams.set(stream, only);
        reply.raw.on('close', () => this.streams.delete(stream));
      },
    );
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const s of this.streams.keys()) s.close();
    this.streams.clear();
  }
}
