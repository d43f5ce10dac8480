/**
 * One task attempt on a worker: the image is prepared, `started` goes to
 * DONE, the executor runs the task while heartbeats and output go out, and
 * `finished` goes to DONE. A task that may outlive the broker's patience
 * with an unacked delivery is acked at start and held by heartbeats instead.
 */
import { reportQueue, type TaskEvent, type TodoMessage } from '../core/channels.js';
import { MessageTooLargeError, RequeueError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Clock, Delivery, Executor, ExecResult, Queue, WorkerSource } from '../core/ports.js';
import { cacheKey } from '../core/cache-key.js';
import { needsLease, type Settings } from '../core/settings.js';
import { attemptKey } from '../core/channels.js';
import { OutputStream } from './output-stream.js';
import { checkOutputs, fromWire, inputKeys, toWire, type FileData } from '../core/files.js';

/** An attempt that ends within this long reports its start with its end, in one message. */
export const START_REPORT_DELAY_MS = 100;

/** Where a worker finds its Dockerfile (config-source.ts over Git). */
export interface WorkerSources {
  worker(url: string, commit: string, name: string): Promise<WorkerSource>;
}

export interface AttemptContext {
  queue: Queue;
  executor: Executor;
  sources: WorkerSources;
  clock: Clock;
  outputCap: number;
  /** The broker's consumer timeout and the heartbeat period of running attempts. */
  lease: Pick<Settings, 'consumerTimeoutMs' | 'heartbeatMs'>;
  host: string;
  /** This worker process, `host:pid`. */
  workerId: string;
  pid: number;
}

/** Why an attempt was killed from outside. */
export type StopReason = 'cancel' | 'shutdown' | 'abandon';

export interface Control {
  run: string;
  controller: AbortController;
  reason?: StopReason;
  /** It has a slot: it runs (or is being prepared to). Without one it is only waiting for its turn. */
  running?: boolean;
}

/**
 * Runs one attempt; `release` is called as soon as the task's own process
 * (or container) is gone, so that its slot takes the next attempt while this
 * one's outcome is still being sent.
 */
export async function runAttempt(ctx: AttemptContext, msg: TodoMessage, control: Control, delivery: Delivery, log: Logger, release: () => void = () => undefined): Promise<void> {
  const { queue, executor, clock } = ctx;
  const at = () => new Date(clock.now()).toISOString();
  const base = { v: 1 as const, run: msg.run, task: msg.task, attempt: msg.attempt, host: ctx.host, worker: ctx.workerId };
  // A large outcome (files, long output) goes to DONE_LARGE, which the collector takes a few at a time.
  const report = (event: TaskEvent) => queue.publish(reportQueue(event), event);
  /** The outcome of an attempt that gitjobs could not run (no image, an executor error). */
  const failedToRun = (image: string, error: string): TaskEvent => ({ ...base, kind: 'finished', image, at: at(), exitCode: null, durationMs: 0, timedOut: false, stdout: '', output: `${error}\n`, truncated: false, error });

  const env = { GITJOBS_RUN: msg.run, GITJOBS_TASK: msg.task, GITJOBS_ATTEMPT: String(msg.attempt) };
  if (msg.inputsError) {
    // What it needs cannot be given to it: it fails saying why, without running.
    release();
    await report({ ...base, kind: 'started', image: 'none', at: at(), redelivered: delivery.redelivered });
    await report(failedToRun('none', msg.inputsError));
    return;
  }
  const inputs = msg.inputs ? fromWire(msg.inputs) : undefined;
  let image: string;
  let key: string | undefined;
  try {
    const source = await ctx.sources.worker(msg.config.url, msg.config.commit, msg.worker);
    if (msg.cache) {
      key = await keyOf(ctx, msg, source, env, inputs ?? []);
      const hit = key === undefined ? undefined : msg.cache.candidates.find((c) => c.key === key);
      if (hit) {
        // The same computation succeeded before: nothing is built and nothing runs.
        release();
        log.info({ from: `${hit.run}/${hit.task}` }, 'result taken from the cache');
        const { key: _, ...cached } = hit;
        await report({ ...base, kind: 'finished', image: 'none (result cache)', at: at(), exitCode: 0, durationMs: 0, timedOut: false, stdout: '', output: '', truncated: false, cacheKey: hit.key, cached });
        return;
      }
    }
    image = await executor.prepare(source);
  } catch (err) {
    release();
    const error = `worker image: ${(err as Error).message}`;
    log.error({ err: (err as Error).message }, 'could not prepare the worker image');
    await report({ ...base, kind: 'started', image: 'none', at: at(), redelivered: delivery.redelivered });
    await report(failedToRun('none', error));
    return;
  }
  const imageName = executor.kind === 'docker' ? image : `${executor.kind} (unsandboxed)`;
  // From here on, every report names the base image the worker image was built on (what `rerun --pinned` compares).
  const baseImage = await executor.baseImage?.().catch(() => undefined);
  if (baseImage) Object.assign(base, { baseImage });
  const leased = needsLease(ctx.lease, msg.timeoutMs);
  const leaseMs = ctx.lease.heartbeatMs * 3;
  const startedAt = at();
  const started = { ...base, kind: 'started' as const, image: imageName, at: startedAt, redelivered: delivery.redelivered, ...(leased ? { leaseMs } : {}) };
  // `started` goes out once the attempt has run for a moment: one that ends sooner reports start and end in one
  // message (half the traffic for short tasks; both transitions are still committed, with their own times).
  let startReport: Promise<void> | undefined;
  let cancelStart: (() => void) | undefined;
  if (leased) {
    startReport = report(started);
    await startReport;
    delivery.ackNow();
  } else {
    cancelStart = clock.after(START_REPORT_DELAY_MS, () => {
      cancelStart = undefined;
      startReport = report(started);
    });
  }
  // On the fanout, so that every collector hears every heartbeat. A leased attempt is held by them (they carry
  // its lease); any other is held by its message, and they tell a collector that has just started that a worker
  // still has it, so that it does not queue it again.
  let stopHeartbeat = clock.after(ctx.lease.heartbeatMs, function beat() {
    queue.broadcast('control', { ...base, kind: 'heartbeat', image: imageName, at: at(), ...(leased ? { leaseMs } : {}) }).catch(() => undefined);
    stopHeartbeat = clock.after(ctx.lease.heartbeatMs, beat);
  });
  log.debug({ argv: msg.argv, leased }, 'task started');
  const output = new OutputStream(queue, clock, msg);
  let result: ExecResult;
  try {
    result = await executor.run({
      signal: control.controller.signal,
      onOutput: output.write,
      image,
      argv: msg.argv,
      timeoutMs: msg.timeoutMs,
      limits: msg.limits,
      labels: {
        'io.gitjobs.run': msg.run,
        'io.gitjobs.task-id': msg.task,
        'io.gitjobs.attempt': String(msg.attempt),
        'io.gitjobs.worker-host': ctx.host,
        'io.gitjobs.worker-pid': String(ctx.pid),
      },
      env,
      outputCap: ctx.outputCap,
      ...(msg.out ? { out: msg.out } : {}),
      ...(inputs ? { inputs } : {}),
    });
  } catch (err) {
    const error = `${executor.kind} executor: ${(err as Error).message}`;
    log.error({ err: (err as Error).message }, 'task could not run');
    cancelStart?.();
    await startReport;
    await report({ ...failedToRun(imageName, error), ...(startReport ? {} : { startedAt, redelivered: delivery.redelivered }) });
    return;
  } finally {
    release();
    stopHeartbeat();
    await output.end();
  }
  cancelStart?.();
  // A `started` that went out is confirmed before `finished` follows it.
  await startReport?.catch(() => undefined);
  const { aborted, files, outError, ...outcome } = result;
  const kept = msg.out ? keptFiles(outcome, files ?? [], msg.out.maxBytes, outError) : {};
  // A large one goes to another queue than its `started` and may be read first: it carries its start time either way.
  const finished = { ...base, kind: 'finished' as const, image: imageName, at: at(), ...outcome, ...kept, startedAt, ...(startReport ? {} : { redelivered: delivery.redelivered }), ...(key ? { cacheKey: key } : {}) };
  if (aborted) {
    if (control.reason === 'shutdown') {
      // Another worker takes the attempt: a leased one's message is acked already, so it is queued again.
      if (leased) return queue.publish('todo', msg);
      throw new RequeueError(`${attemptKey(msg)}: worker shutting down`);
    }
    if (control.reason === 'abandon') {
      log.info({}, 'task killed: a duplicate copy of an attempt that tracking has settled');
      return;
    }
    // Its run was cancelled: what it printed until then goes to tracking, as the log of a cancelled task.
    log.info({}, 'task killed: its run was cancelled');
    await report({ ...finished, cancelled: true });
    return;
  }
  log.info({ exitCode: result.exitCode, durationMs: result.durationMs, timedOut: result.timedOut }, 'task finished');
  try {
    await report(finished);
  } catch (err) {
    if (!(err instanceof MessageTooLargeError) || !finished.files) throw err;
    // Its files are more than one message can carry: the task fails saying so, and the report goes without them.
    const { files: _, ...rest } = finished;
    const error = `its files could not be sent to the collector: ${err.message}`;
    log.warn({ err: err.message }, 'the files of a task are too large for a message');
    await report({ ...rest, error, output: `${rest.output}gitjobs: ${error}\n` });
  }
}

/**
 * What of a task's /out goes back with its outcome: the files of a success
 * within its caps; a success past them fails, saying which; a failure's
 * files are dropped (its log says what went wrong).
 */
function keptFiles(outcome: Omit<ExecResult, 'aborted' | 'files' | 'outError'>, files: FileData[], maxBytes: number, outError: string | undefined): { files?: ReturnType<typeof toWire>; error?: string; output?: string } {
  if (outcome.exitCode !== 0 || outcome.timedOut) return {};
  const wrong = outError ?? checkOutputs(files, maxBytes);
  if (wrong) return { error: wrong, output: `${outcome.output}gitjobs: ${wrong}\n` };
  return files.length ? { files: toWire(files) } : {};
}

/**
 * The attempt's result-cache key (core/cache-key.ts), or undefined when it
 * cannot be known (a worker folder without a tree id, a base image that
 * cannot be inspected): then the task runs and nothing is cached.
 */
async function keyOf(ctx: AttemptContext, msg: TodoMessage, source: WorkerSource, env: Record<string, string>, inputs: FileData[]): Promise<string | undefined> {
  const { executor } = ctx;
  if (!source.tree) return undefined;
  const unsandboxed = `${executor.kind}@${ctx.host}`;
  const base = executor.kind === 'docker' ? await executor.baseImage?.().catch(() => undefined) : unsandboxed;
  if (!base) return undefined;
  return cacheKey({
    executor: executor.kind === 'docker' ? 'docker' : unsandboxed,
    worker: msg.worker,
    tree: source.tree,
    base,
    argv: msg.argv,
    env,
    limits: msg.limits,
    timeoutMs: msg.timeoutMs,
    inputs: inputKeys(inputs),
    ...(msg.out ? { outBytes: msg.out.maxBytes } : {}),
  });
}
