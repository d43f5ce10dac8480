/**
 * Live views over Server-Sent Events: `/api/events` tells the dashboard of
 * every committed transition; `/api/runs/:run/tasks/:task/log` streams a
 * running task's output as workers send it, and the whole log from tracking
 * once the task is final.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { layout } from '../core/layout.js';
import { isValidId } from '../core/ids.js';
import type { GitStore, RunObserver } from '../core/ports.js';
import { isFinal, type TaskRecord } from '../core/task.js';

interface Stream {
  reply: FastifyReply;
  send(event: string, data: unknown): void;
  close(): void;
}

function openStream(reply: FastifyReply): Stream {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.write(': gitjobs\n\n');
  const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
  const stream: Stream = {
    reply,
    send: (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
    close: () => {
      clearInterval(ping);
      res.end();
    },
  };
  res.on('close', () => clearInterval(ping));
  return stream;
}

/** Output of running tasks, kept from their start so that a late viewer sees it all (up to a cap). */
interface LiveLog {
  attempt: number;
  text: string;
  viewers: Set<Stream>;
}

const LIVE_CAP = 1024 * 1024;

export class LiveHub implements RunObserver {
  private readonly events = new Set<Stream>();
  private readonly logs = new Map<string, LiveLog>();

  /** A chunk of output from a worker (the OUTPUT exchange). */
  output(content: Buffer): void {
    let msg: { run?: string; task?: string; attempt?: number; data?: string };
    try {
      msg = JSON.parse(content.toString('utf8'));
    } catch {
      return;
    }
    if (typeof msg.run !== 'string' || typeof msg.task !== 'string' || typeof msg.data !== 'string' || typeof msg.attempt !== 'number') return;
    const key = `${msg.run}/${msg.task}`;
    let log = this.logs.get(key);
    if (!log || log.attempt < msg.attempt) {
      const viewers = log?.viewers ?? new Set<Stream>();
      log = { attempt: msg.attempt, text: '', viewers };
      this.logs.set(key, log);
      for (const v of viewers) v.send('attempt', { attempt: msg.attempt });
    }
    if (msg.attempt < log.attempt) return;
    if (log.text.length < LIVE_CAP) log.text += msg.data.slice(0, LIVE_CAP - log.text.length);
    for (const v of log.viewers) v.send('output', msg.data);
  }

  taskChanged(change: { run: string; task: TaskRecord; commit: string; subject: string }): void {
    const t = change.task;
    const summary = { id: t.id, state: t.state, attempts: t.attempts, maxAttempts: t.maxAttempts, exitCode: t.exitCode, durationMs: t.durationMs, worker: t.worker, error: t.error };
    for (const s of this.events) s.send('task', { run: change.run, task: summary, commit: change.commit, subject: change.subject });
    if (isFinal(t)) {
      const key = `${change.run}/${t.id}`;
      const log = this.logs.get(key);
      if (log) {
        for (const v of log.viewers) {
          v.send('end', { state: t.state, exitCode: t.exitCode ?? null });
          v.close();
        }
        this.logs.delete(key);
      }
    }
  }

  runQueued(run: { id: string; tasks: string[] }): void {
    for (const s of this.events) s.send('run', { run: run.id, state: 'queued', progress: { done: 0, failed: 0, total: run.tasks.length } });
  }

  runProgress(run: { id: string }, progress: { done: number; failed: number; total: number }): void {
    for (const s of this.events) s.send('run', { run: run.id, state: 'running', progress });
  }

  runFinished(run: { id: string; state: string }, progress: { done: number; failed: number; total: number }): void {
    for (const s of this.events) s.send('run', { run: run.id, state: run.state, progress });
  }

  register(app: FastifyInstance, store: GitStore, trackingRepo: string): void {
    app.get('/api/events', { schema: { summary: 'Transitions as they are committed (Server-Sent Events: task, run)' } }, async (_request, reply) => {
      const stream = openStream(reply);
      this.events.add(stream);
      reply.raw.on('close', () => this.events.delete(stream));
    });

    app.get<{ Params: { run: string; task: string } }>(
      '/api/runs/:run/tasks/:task/log',
      { schema: { summary: "A task's output: live while it runs, then the whole log (Server-Sent Events: output, attempt, log, end)" } },
      async (request, reply) => {
        const { run, task } = request.params;
        if (!isValidId(run) || !isValidId(task)) return reply.code(400).send({ error: 'not a run or task id' });
        const head = await store.head(trackingRepo);
        const text = head && (await store.readFile(trackingRepo, head, layout.taskFile(run, task)));
        if (!text) return reply.code(404).send({ error: `no task ${task} in run ${run}` });
        const record = JSON.parse(text) as TaskRecord;
        const stream = openStream(reply);
        if (isFinal(record)) {
          stream.send('log', (await store.readFile(trackingRepo, head!, layout.logFile(run, task))) ?? '');
          stream.send('end', { state: record.state, exitCode: record.exitCode ?? null });
          stream.close();
          return;
        }
        const key = `${run}/${task}`;
        let log = this.logs.get(key);
        if (!log) {
          log = { attempt: record.attempts, text: '', viewers: new Set() };
          this.logs.set(key, log);
        }
        if (log.text) stream.send('output', log.text);
        log.viewers.add(stream);
        reply.raw.on('close', () => log!.viewers.delete(stream));
      },
    );
  }

  close(): void {
    for (const s of this.events) s.close();
    for (const l of this.logs.values()) for (const v of l.viewers) v.close();
    this.events.clear();
    this.logs.clear();
  }
}
