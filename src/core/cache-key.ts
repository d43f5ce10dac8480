/**
 * The result cache's key: everything that can change what a task does.
 *
 * A task runs with no network, on a read-only image built from one folder
 * of the config repository on one base image, so its outcome is fixed by:
 * the executor, the worker folder's tree id (not the config commit: a
 * commit that does not touch the folder keeps the key), the base image id,
 * the command, the environment given to it, its limits and timeout, and the
 * blob ids of its input files. Two attempts with one key compute the same
 * thing; a later one may take the earlier one's result instead of running.
 *
 * Left out on purpose: gitjobs' identity variables (GITJOBS_RUN, _TASK,
 * _ATTEMPT), which name the attempt and not what it computes. A task whose
 * output depends on them, on time or on chance must not ask for the cache.
 */
import { createHash } from 'node:crypto';
import type { Limits } from './channels.js';

export const IDENTITY_ENV: readonly string[] = ['GITJOBS_RUN', 'GITJOBS_TASK', 'GITJOBS_ATTEMPT'];

/** A todo commit whose message has this line runs its projects without the cache (`gitjobs submit --no-cache` writes it). */
export const NO_CACHE_TRAILER = 'Gitjobs-Cache: off';

export interface CacheKeyParts {
  /** `docker`, or `process@<host>` (an unsandboxed task runs with its host's tools). */
  executor: string;
  worker: string;
  /** Tree id of `workers/<worker>/` at the run's config commit. */
  tree: string;
  /** Id of the base image the worker image is built on (Docker); the executor again otherwise. */
  base: string;
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  limits: Limits;
  timeoutMs: number;
  /** Each input's path under /in and its blob id, if it has any (files.ts inputKeys). */
  inputs: readonly string[];
  /** The task's /out cap, when it has one: a result that did not fit a smaller cap is not the same result. */
  outBytes?: number;
}

const sha256 = (value: unknown): string => createHash('sha256').update(JSON.stringify(value)).digest('hex');

/** The key, as 64 hex digits. */
export function cacheKey(parts: CacheKeyParts): string {
  const env = Object.entries(parts.env)
    .filter(([name]) => !IDENTITY_ENV.includes(name))
    // By code unit, not by locale; names in an object are unique, so none compare equal.
    .sort(([a], [b]) => (a < b ? -1 : 1));
  const { memoryBytes, nanoCpus, pids } = parts.limits;
  return sha256({
    v: 1,
    executor: parts.executor,
    worker: parts.worker,
    tree: parts.tree,
    base: parts.base,
    argv: parts.argv,
    env,
    limits: [memoryBytes, nanoCpus, pids],
    timeoutMs: parts.timeoutMs,
    inputs: [...parts.inputs].sort(),
    ...(parts.outBytes ? { outBytes: parts.outBytes } : {}),
  });
}

/**
 * What of a key gitjobs knows before a worker has the task: worker name,
 * command and timeout. The index files earlier results under it, and a
 * task's TODO message carries the keys filed under its own; the worker,
 * which knows the rest (tree, base image, limits), picks the one that is
 * equal to its own key, if any.
 */
export function specKey(worker: string, argv: readonly string[], timeoutMs: number): string {
  return sha256({ v: 1, worker, argv, timeoutMs });
}
