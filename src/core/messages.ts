import { z } from 'zod';
import { MessageError } from './errors.js';

/**
 * What travels on the queues. TODO carries one task attempt to a worker; DONE
 * carries what became of it back to the collector (`started`, then `finished`).
 */
const limits = z.object({ memoryBytes: z.number(), nanoCpus: z.number(), pids: z.number() });

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
});
export type TodoMessage = z.infer<typeof todoMessage>;
export type Limits = z.infer<typeof limits>;

const eventBase = {
  v: z.literal(1),
  run: z.string(),
  task: z.string(),
  attempt: z.number().int().positive(),
  host: z.string(),
  /** Which worker process: `host:pid`. */
  worker: z.string().optional(),
  image: z.string(),
  at: z.string(),
};

export const taskEvent = z.discriminatedUnion('kind', [
  z.object({
    ...eventBase,
    kind: z.literal('started'),
    /** The worker acked its TODO message and holds the attempt by heartbeats: lost if they stop for this long (ms). */
    leaseMs: z.number().positive().optional(),
  }),
  /** Sent while a leased attempt runs; not a transition, never committed. Its lease lets collectors that did not see `started` hold it too. */
  z.object({ ...eventBase, kind: z.literal('heartbeat'), leaseMs: z.number().positive().optional() }),
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
  }),
]);
export type TaskEvent = z.infer<typeof taskEvent>;
export type FinishedEvent = Extract<TaskEvent, { kind: 'finished' }>;

export function decode<T>(schema: z.ZodType<T>, queue: string, content: Buffer): T {
  let raw: unknown;
  try {
    raw = JSON.parse(content.toString('utf8'));
  } catch {
    throw new MessageError(`${queue}: message is not JSON (${content.length} bytes)`);
  }
  const r = schema.safeParse(raw);
  if (!r.success) throw new MessageError(`${queue}: message does not match its schema: ${r.error.issues.map((i) => `${i.path.join('.') || '$'}: ${i.message}`).join('; ')}`);
  return r.data;
}
