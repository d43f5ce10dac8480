/**
 * Live logs over Server-Sent Events: `/api/runs/:run/tasks/:task/log`
 * streams a running task's output as workers send it, and the whole log
 * from tracking once the task is final.
 */
import type { FastifyInstance } from 'fastify';
import { MaskedStream, SecretMasker } from '../core/masking.js';
import { openStream, type Stream } from './sse.js';
import { locateRun, repoTree } from '../core/run-reader.js';
import type { OutputMessage } from '../core/channels.js';
import type { RunPaths } from '../core/layout.js';
import { parseTaskList, type TaskSpec } from '../core/tracking/records.js';
import { isValidId } from '../core/ids.js';
import type { GitStore, RunObserver } from '../core/ports.js';
import { isFinal, type TaskRecord } from '../core/task.js';

/** Output of running tasks, kept from their start so that a late viewer sees it all (up to a cap). */
interface LiveLog {
  attempt: number;
  /** What was shown so far, masked. */
  text: string;
  viewers: Set<Stream>;
  /** Secrets masked as stored output is, also when a chunk ends inside one. */
  masked: MaskedStream;
}

const LIVE_CAP = 1024 * 1024;

export class LiveLogs implements RunObserver {
  private readonly logs = new Map<string, LiveLog>();

  /** Live output goes through the same masker as what is committed. */
  constructor(private readonly masker: SecretMasker = new SecretMasker([])) {}

  /** A chunk of output from a worker (the OUTPUT fanout). */
  output(msg: OutputMessage): void {
    const key = `${msg.run}/${msg.task}`;
    let log = this.logs.get(key);
    if (!log || log.attempt < msg.attempt) {
      const viewers = log?.viewers ?? new Set<Stream>();
      log = { attempt: msg.attempt, text: '', viewers, masked: new MaskedStream(this.masker) };
      this.logs.set(key, log);
      for (const v of viewers) v.send('attempt', { attempt: msg.attempt });
    }
    if (msg.attempt < log.attempt) return;
    const data = log.masked.push(msg.data);
    if (!data) return;
    if (log.text.length < LIVE_CAP) log.text += data.slice(0, LIVE_CAP - log.text.length);
    for (const v of log.viewers) v.send('output', data);
  }

  /** A task that is final ends the live log of whoever watches it. */
  taskChanged(change: { run: string; task: TaskRecord }): void {
    const t = change.task;
    if (!isFinal(t)) return;
    const key = `${change.run}/${t.id}`;
    const log = this.logs.get(key);
    if (!log) return;
    const rest = log.masked.end();
    for (const v of log.viewers) {
      if (rest) v.send('output', rest);
      v.send('end', { state: t.state, exitCode: t.exitCode ?? null });
      v.close();
    }
    this.logs.delete(key);
  }

  register(app: FastifyInstance, store: GitStore, trackingRepo: string): void {
    app.get<{ Params: { run: string; task: string } }>(
      '/api/runs/:run/tasks/:task/log',
      { schema: { summary: "A task's output: live while it runs, then the whole log (Server-Sent Events: output, attempt, log, end)" } },
      async (request, reply) => {
        const { run, task } = request.params;
        if (!isValidId(run) || !isValidId(task)) return reply.code(400).send({ error: 'not a run or task id' });
        const head = await store.head(trackingRepo);
        const located = head ? await locateRun(repoTree(store, trackingRepo), head, run) : undefined;
        const text = located && (await store.readFile(trackingRepo, head!, located.paths.taskFile(task)));
        if (!located || !text) return reply.code(404).send({ error: `no task ${task} in run ${run}` });
        // The final state needs the task's attempts against its limit: in the record (layout 1) or the run's task list.
        const parsed = JSON.parse(text) as TaskRecord;
        const record = { ...parsed, ...(parsed.maxAttempts === undefined ? { maxAttempts: 1, ...(await specOf(store, trackingRepo, head!, located.paths, task)) } : {}) };
        const stream = openStream(reply);
        if (isFinal(record)) {
          stream.send('log', (await store.readFile(trackingRepo, head!, located.paths.logFile(task))) ?? '');
          stream.send('end', { state: record.state, exitCode: record.exitCode ?? null });
          stream.close();
          return;
        }
        const key = `${run}/${task}`;
        let log = this.logs.get(key);
        if (!log) {
          log = { attempt: record.attempts, text: '', viewers: new Set(), masked: new MaskedStream(this.masker) };
          this.logs.set(key, log);
        }
        if (log.text) stream.send('output', log.text);
        log.viewers.add(stream);
        reply.raw.on('close', () => log!.viewers.delete(stream));
      },
    );
  }

  close(): void {
    for (const l of this.logs.values()) for (const v of l.viewers) v.close();
    this.logs.clear();
  }
}

/** A layout-2 task's attempts and retry policy live in the run's task list, written once. */
async function specOf(store: GitStore, repo: string, head: string, paths: RunPaths, task: string): Promise<Partial<TaskSpec>> {
  if (!paths.taskList) return {};
  const list = await store.readFile(repo, head, paths.taskList);
  return (list ? parseTaskList(list).find((t) => t.id === task) : undefined) ?? {};
}
