import type { Limits } from './messages.js';

/** Every setting with its default, in one place. */
export interface Settings {
  repos: { todo: string; tracking: string; done: string; config: string };
  branch: string;
  queues: { todo: string; done: string };
  /** Resource limits of one task container. */
  limits: Limits;
  /** Bytes of a task's output kept; the rest is cut with a marker. */
  outputCap: number;
  /** Bytes of output copied into the task record (`outputTail`). */
  outputTail: number;
  baseImage: string;
}

export const DEFAULT_SETTINGS: Settings = {
  repos: { todo: 'tache_a_faire', tracking: 'tache_suivi', done: 'tache_termine', config: 'config' },
  branch: 'main',
  queues: { todo: 'TODO', done: 'DONE' },
  limits: { memoryBytes: 512 * 1024 * 1024, nanoCpus: 1_000_000_000, pids: 256 },
  outputCap: 1024 * 1024,
  outputTail: 2048,
  baseImage: 'gitjobs-base:latest',
};

/** Queue names with a prefix, so that several installations or tests can share one broker. */
export function prefixedQueues(prefix: string | undefined): Settings['queues'] {
  return prefix ? { todo: `${prefix}.TODO`, done: `${prefix}.DONE` } : { ...DEFAULT_SETTINGS.queues };
}
