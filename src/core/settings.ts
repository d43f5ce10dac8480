import type { Limits } from './channels.js';

/** Where RabbitMQ is when nothing says otherwise (GITJOBS_AMQP_URL). */
export const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

/** Every setting with its default, in one place. */
export interface Settings {
  repos: { todo: string; tracking: string; done: string; config: string };
  branch: string;
  /**
   * TODO: task attempts to run; DONE: what became of them; DEAD: tasks that
   * used up their attempts, for an operator. CONTROL is a fanout exchange that
   * tells every worker of a cancelled run (and carries heartbeats); OUTPUT a
   * fanout exchange of running tasks' output, for live logs.
   */
  queues: { todo: string; done: string; large: string; dead: string; control: string; output: string };
  /** Resource limits of one task container. */
  limits: Limits;
  /** Bytes of a task's output kept; the rest is cut with a marker. */
  outputCap: number;
  /** Bytes of output copied into the record of a failed task (`outputTail`). */
  outputTail: number;
  /** Bytes of stdout a run's tasks may give its reducer, all together; past it the run fails, naming the cap. */
  resultCap: number;
  /** Project files one push may add or change; past it, one rejected record names the rule and none of them run. */
  pushFiles: number;
  baseImage: string;
  /** Backoff before retry n is retryBaseMs * 2^(n-1), at most retryMaxMs. */
  retryBaseMs: number;
  retryMaxMs: number;
  /**
   * RabbitMQ's consumer_timeout (default 30 min). A task whose timeout comes
   * near it is not held unacked: its worker acks at start and holds the
   * attempt by heartbeats every heartbeatMs; three missed ones and the
   * attempt counts as lost.
   */
  consumerTimeoutMs: number;
  heartbeatMs: number;
  /**
   * The largest message the broker takes (RabbitMQ's max_message_size: 128
   * MiB in 3.x, 16 MiB in 4.x). A larger one is refused before it is sent:
   * files past it fail their task, saying so.
   */
  maxMessageBytes: number;
  /**
   * TODO messages a worker holds beyond its slots (RabbitMQ's prefetch is
   * slots + readAhead). A held message starts the moment a slot frees,
   * without a round trip to the broker (a few per cent for tasks of
   * milliseconds), but it waits behind this worker's running tasks while
   * another worker may be idle: so none by default.
   */
  readAhead: number;
}

export const DEFAULT_SETTINGS: Settings = {
  repos: { todo: 'tache_a_faire', tracking: 'tache_suivi', done: 'tache_termine', config: 'config' },
  branch: 'main',
  queues: { todo: 'TODO', done: 'DONE', large: 'DONE_LARGE', dead: 'DEAD', control: 'CONTROL', output: 'OUTPUT' },
  limits: { memoryBytes: 512 * 1024 * 1024, nanoCpus: 1_000_000_000, pids: 256 },
  outputCap: 1024 * 1024,
  outputTail: 2048,
  resultCap: 64 * 1024 * 1024,
  pushFiles: 100,
  baseImage: 'gitjobs-base:latest',
  retryBaseMs: 2000,
  retryMaxMs: 5 * 60_000,
  consumerTimeoutMs: 30 * 60_000,
  heartbeatMs: 10_000,
  maxMessageBytes: 128 * 1024 * 1024,
  readAhead: 0,
};

/** Whether a task may outlive the broker's patience with an unacked delivery (room left for the image build). */
export function needsLease(settings: Pick<Settings, 'consumerTimeoutMs'>, taskTimeoutMs: number): boolean {
  return taskTimeoutMs > settings.consumerTimeoutMs / 2;
}

export function retryDelay(settings: Pick<Settings, 'retryBaseMs' | 'retryMaxMs'>, failedAttempt: number): number {
  return Math.min(settings.retryMaxMs, settings.retryBaseMs * 2 ** Math.max(0, failedAttempt - 1));
}

/** Queue names with a prefix, so that several installations or tests can share one broker. */
export function prefixedQueues(prefix: string | undefined): Settings['queues'] {
  return prefix ? { todo: `${prefix}.TODO`, done: `${prefix}.DONE`, large: `${prefix}.DONE_LARGE`, dead: `${prefix}.DEAD`, control: `${prefix}.CONTROL`, output: `${prefix}.OUTPUT` } : { ...DEFAULT_SETTINGS.queues };
}

/**
 * Where the queue web services keep their queues on the broker: `q.` beside
 * the default names, `<prefix>.q.` beside prefixed ones. No gitjobs queue,
 * and no other installation's, is in it.
 */
export function userQueueNamespace(queues: Settings['queues']): string {
  return queues.todo.endsWith('TODO') ? `${queues.todo.slice(0, -'TODO'.length)}q.` : `${queues.todo}.q.`;
}
