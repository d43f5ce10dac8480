import { z } from 'zod';
import { MessageError, MessageTooLargeError } from './errors.js';

/**
 * Every message that travels between the stages, one schema per channel:
 *
 *   TODO     dispatcher, collector -> worker      one task attempt to run
 *   DONE     worker -> collector                  what became of it (started, heartbeat, finished)
 *   DEAD     collector, queues -> an operator     attempts out of retries, and messages no schema accepts
 *   CONTROL  collector, worker -> every listener  cancel a run, abandon a duplicate attempt, heartbeats
 *   OUTPUT   worker -> every listener             a running task's output, for live logs
 *
 * TODO, DONE and DEAD are durable queues; CONTROL and OUTPUT are fanouts that
 * only live subscribers hear. Adapters encode and decode through these
 * schemas, so no stage ever sees a half-parsed message.
 */
const limits = z.object({ memoryBytes: z.number(), nanoCpus: z.number(), pids: z.number() });
/** A file in a message (files.ts): its path and its bytes in base64. */
const wireFile = z.object({ path: z.string(), data: z.string() });
export type Limits = z.infer<typeof limits>;

export const todoMessage = z.object({
  v: z.literal(1),
  run: z.string(),
  task: z.string(),
  attempt: z.number().int().positive(),
  worker: z.string(),
  argv: z.array(z.string()).min(1),
  timeoutMs: z.number().positive(),
  limits,
  /** Where the worker fetches its Dockerfile: the config repository and the commit the run was dispatched at. */
  config: z.object({ url: z.string(), commit: z.string() }),
  todoCommit: z.string(),
  /**
   * The task asked for the result cache: its worker computes its key (cache-key.ts), reports it with the
   * outcome, and runs nothing when one of these earlier results has the same key.
   */
  cache: z.object({ candidates: z.array(z.object({ key: z.string(), run: z.string(), task: z.string(), commit: z.string() })) }).optional(),
  /** The task may write this many bytes under /out ($GITJOBS_OUT); what it leaves there comes back with `finished`. */
  out: z.object({ maxBytes: z.number().int().positive() }).optional(),
  /** Tasks of the run it needs: their stdout and files are its inputs (inputs.ts fills `inputs` before it is sent). */
  needs: z.array(z.string()).optional(),
  /** What it needs left it (files.ts): shown read-only under /in ($GITJOBS_IN) as `<task>/stdout` and `<task>/files/...`. */
  inputs: z.array(wireFile).optional(),
  /** Its inputs could not be given to it (too large, unreadable): the attempt fails with this, without running. */
  inputsError: z.string().optional(),
});
export type TodoMessage = z.infer<typeof todoMessage>;

const eventBase = {
  v: z.literal(1),
  run: z.string(),
  task: z.string(),
  attempt: z.number().int().positive(),
  host: z.string(),
  /** Which worker process: `host:pid`. */
  worker: z.string().optional(),
  image: z.string(),
  /** The id of the base image the worker image was built on (Docker executor). */
  baseImage: z.string().optional(),
  at: z.string(),
};

const heartbeat = z.object({
  ...eventBase,
  kind: z.literal('heartbeat'),
  /** Set when the attempt is held by heartbeats (acked at start): lost if they stop for this long (ms). */
  leaseMs: z.number().positive().optional(),
});

export const taskEvent = z.discriminatedUnion('kind', [
  z.object({
    ...eventBase,
    kind: z.literal('started'),
    /** The worker acked its TODO message and holds the attempt by heartbeats: lost if they stop for this long (ms). */
    leaseMs: z.number().positive().optional(),
    /** The broker had delivered this copy before (its first worker died): false for a fresh copy. */
    redelivered: z.boolean().optional(),
  }),
  /** Sent while an attempt runs; not a transition, never committed. */
  heartbeat,
  z.object({
    ...eventBase,
    kind: z.literal('finished'),
    exitCode: z.number().int().nullable(),
    durationMs: z.number().nonnegative(),
    timedOut: z.boolean(),
    stdout: z.string(),
    /** stdout and stderr interleaved as they came. */
    output: z.string(),
    truncated: z.boolean(),
    /** Set when the attempt failed for a reason other than the task's own exit code. */
    error: z.string().optional(),
    /**
     * When the attempt started: the start's time when the start is recorded
     * from this report (an attempt so short that no `started` was sent, or a
     * large report read before its `started`, which went to DONE).
     */
    startedAt: z.string().optional(),
    redelivered: z.boolean().optional(),
    /** The attempt was killed because its run was cancelled: what it printed until then, for its log. */
    cancelled: z.literal(true).optional(),
    /** The result cache's key of this attempt (sent for tasks that asked for the cache). */
    cacheKey: z.string().optional(),
    /** Nothing ran: this earlier result has the same key (one of the TODO message's candidates). */
    cached: z.object({ run: z.string(), task: z.string(), commit: z.string() }).optional(),
    /** What the task left under /out, for a task that asked for it (sent only when it succeeded). */
    files: z.array(wireFile).optional(),
  }),
]);
export type TaskEvent = z.infer<typeof taskEvent>;
export type StartedEvent = Extract<TaskEvent, { kind: 'started' }>;
export type HeartbeatEvent = Extract<TaskEvent, { kind: 'heartbeat' }>;
export type FinishedEvent = Extract<TaskEvent, { kind: 'finished' }>;

/** A message an operator should look at: the last attempt of a task out of retries, or one no schema accepts. */
export const deadLetter = todoMessage.partial().extend({
  v: z.literal(1),
  reason: z.string(),
  failedAt: z.string(),
  /** For a message that could not be decoded: the channel it came from and its body as text. */
  channel: z.string().optional(),
  body: z.string().optional(),
});
export type DeadLetter = z.infer<typeof deadLetter>;

export const controlMessage = z.union([
  /** Every worker stops the run's attempts and drops its queued ones. */
  z.object({ kind: z.literal('cancel'), run: z.string() }),
  /** One worker stops one attempt: tracking has settled it, so this copy is a duplicate. */
  z.object({ kind: z.literal('abandon'), run: z.string(), task: z.string(), attempt: z.number().int().positive(), worker: z.string() }),
  heartbeat,
]);
export type ControlMessage = z.infer<typeof controlMessage>;

export const outputMessage = z.object({
  run: z.string(),
  task: z.string(),
  attempt: z.number().int().positive(),
  seq: z.number().int().nonnegative(),
  data: z.string(),
});
export type OutputMessage = z.infer<typeof outputMessage>;

/** The message type of each channel. */
export interface Channels {
  todo: TodoMessage;
  done: TaskEvent;
  /** Outcomes too large to be held a thousand at a time (files, long output): see `reportQueue`. */
  large: TaskEvent;
  dead: DeadLetter;
  control: ControlMessage;
  output: OutputMessage;
}
export type ChannelName = keyof Channels;
/** Durable queues: each message goes to one consumer. */
export type WorkQueue = 'todo' | 'done' | 'large' | 'dead';
/** Fanouts: each message goes to every live subscriber. */
export type Fanout = 'control' | 'output';

export const CHANNEL_SCHEMAS: { [C in ChannelName]: z.ZodType<Channels[C]> } = {
  todo: todoMessage,
  done: taskEvent,
  large: taskEvent,
  dead: deadLetter,
  control: controlMessage,
  output: outputMessage,
};

/** A message's bytes; past `maxBytes` (the broker's limit) a MessageTooLargeError, so that it is never sent. */
/**
 * A report past this many bytes of output and files goes to LARGE, not DONE.
 * The collector holds up to a thousand DONE messages at once (what keeps
 * commits flowing for runs of many small tasks), which is safe only for
 * small ones: LARGE is consumed a few at a time, as many as fit in its
 * budget (collector.ts), however many tasks finish at once.
 */
export const LARGE_REPORT_BYTES = 256 * 1024;

/** Where a worker sends a report: DONE, or LARGE for a finished attempt with more than LARGE_REPORT_BYTES of output and files. */
export function reportQueue(event: TaskEvent): 'done' | 'large' {
  if (event.kind !== 'finished') return 'done';
  let bytes = event.stdout.length + event.output.length;
  for (const f of event.files ?? []) bytes += f.data.length;
  return bytes > LARGE_REPORT_BYTES ? 'large' : 'done';
}

/** How errors name a channel: its default queue name. */
const channelLabel = (channel: ChannelName): string => (channel === 'large' ? 'DONE_LARGE' : channel.toUpperCase());

export function encode<C extends ChannelName>(channel: C, message: Channels[C], maxBytes?: number): Buffer {
  const body = Buffer.from(JSON.stringify(message));
  if (maxBytes !== undefined && body.length > maxBytes) throw new MessageTooLargeError(channelLabel(channel), body.length, maxBytes);
  return body;
}

/** Decodes a message of `channel`, or throws a MessageError that names the channel and what is wrong. */
export function decode<C extends ChannelName>(channel: C, content: Buffer): Channels[C] {
  let raw: unknown;
  try {
    raw = JSON.parse(content.toString('utf8'));
  } catch {
    throw new MessageError(`${channelLabel(channel)}: message is not JSON (${content.length} bytes)`);
  }
  const r = CHANNEL_SCHEMAS[channel].safeParse(raw);
  if (!r.success) {
    throw new MessageError(`${channelLabel(channel)}: message does not match its schema: ${r.error.issues.map((i) => `${i.path.join('.') || '$'}: ${i.message}`).join('; ')}`);
  }
  return r.data;
}

/** The dead letter for a message no schema accepts: what was wrong, and the body as it came (cut at 64 KiB). */
export function undecodable(channel: ChannelName, content: Buffer, error: MessageError, at: string): DeadLetter {
  return { v: 1, reason: error.message, failedAt: at, channel, body: content.subarray(0, 64 * 1024).toString('utf8') };
}

/** One attempt of one task, as leases, running maps and logs name it. */
export function attemptKey(a: { run: string; task: string; attempt: number }): string {
  return `${a.run}/${a.task}/${a.attempt}`;
}

/** The TODO message for a task's next attempt. */
export function todoFor(
  run: Pick<import('./run.js').RunRecord, 'id' | 'worker' | 'limits' | 'configCommit' | 'todoCommit'>,
  task: Pick<import('./task.js').TaskRecord, 'id' | 'attempts' | 'argv' | 'timeoutMs' | 'cache' | 'outBytes' | 'needs'>,
  ceiling: Limits,
  configUrl: string,
  /** For a task that asked for the cache: earlier results it may take (none for a retry, or with --no-cache). */
  candidates: readonly { key: string; run: string; task: string; commit: string }[] = [],
): TodoMessage {
  return {
    v: 1,
    run: run.id,
    task: task.id,
    attempt: task.attempts + 1,
    worker: run.worker ?? 'default',
    argv: task.argv,
    timeoutMs: task.timeoutMs,
    limits: effectiveLimits(ceiling, run.limits),
    config: { url: configUrl, commit: run.configCommit! },
    todoCommit: run.todoCommit,
    ...(task.cache ? { cache: { candidates: [...candidates] } } : {}),
    ...(task.outBytes ? { out: { maxBytes: task.outBytes } } : {}),
    ...(task.needs?.length ? { needs: task.needs } : {}),
  };
}

/** A project may lower the operator's limits, never raise them. */
export function effectiveLimits(ceiling: Limits, requested: { memoryBytes?: number; nanoCpus?: number; pids?: number } | undefined): Limits {
  return {
    memoryBytes: Math.min(ceiling.memoryBytes, requested?.memoryBytes ?? Infinity),
    nanoCpus: Math.min(ceiling.nanoCpus, requested?.nanoCpus ?? Infinity),
    pids: Math.min(ceiling.pids, requested?.pids ?? Infinity),
  };
}
