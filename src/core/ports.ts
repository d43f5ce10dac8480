/**
 * The ports: what the core needs from the outside world, named after that
 * need. One adapter per technology implements each (src/adapters/<tech>/),
 * and src/adapters/memory/ implements every one in memory for unit tests.
 */
import type { Channels, Fanout, Limits, WorkQueue } from './channels.js';

export interface FileChange {
  path: string;
  /** null deletes the file. */
  content: string | Uint8Array | null;
}

/** The branch as a writer last read it: a commit built on it is refused once another writer has moved the branch. */
export interface Basis {
  head: string | undefined;
  /** Bumped each time the store finds that another writer moved the branch. */
  epoch: number;
}

export interface CommitOptions {
  changes: FileChange[];
  message: string;
  /** Made only if no other writer moved the branch since `basis` was read; else a ConflictError says to read again. */
  basis?: Basis;
  /** Paths that must not exist at the tip (a run recorded twice); else a ConflictError. */
  absent?: string[];
}

export interface Staged {
  /** The new commit: this process reads it at once (`head` returns it). */
  oid: string;
  /**
   * Resolves once the commit is on disk and the branch points at it (or at a
   * later commit of this process), with its id. When another writer moved
   * the branch first, a commit made on a `basis` is refused with a
   * ConflictError (nothing of it is kept); one made without a basis is
   * replayed on top, and resolves with the id of the replay.
   */
  durable: Promise<string>;
}

export interface ChangedFile {
  path: string;
  status: 'added' | 'modified' | 'deleted';
}

export interface TreeEntry {
  name: string;
  oid: string;
  type: 'blob' | 'tree' | 'commit';
}

/** The repositories gitjobs keeps: read what was pushed, write the audit log. */
export interface GitStore {
  /** The branch head as this process sees it: its own staged commits included. */
  head(repo: string): Promise<string | undefined>;
  /** The head with the epoch it belongs to, to build commits on (`CommitOptions.basis`). */
  basis(repo: string): Promise<Basis>;
  /** A file's text; with `maxBytes`, a larger file is refused (SizeLimitError) before it is read. */
  readFile(repo: string, commit: string, path: string, options?: { maxBytes?: number }): Promise<string | undefined>;
  /** A file's bytes; with `maxBytes`, a larger file is refused (SizeLimitError) before it is read. */
  readBytes(repo: string, commit: string, path: string, maxBytes?: number): Promise<Buffer | undefined>;
  /** A file's size in bytes, without reading it. */
  fileSize(repo: string, commit: string, path: string): Promise<number | undefined>;
  listDir(repo: string, commit: string, path: string): Promise<string[]>;
  /**
   * Many files' texts at once, in order (undefined where there is none):
   * where a store has it, each folder's tree is read once and each file by
   * its blob id, instead of every path looked up from the root.
   */
  readFiles?(repo: string, commit: string, paths: readonly string[]): Promise<(string | undefined)[]>;
  /** A folder's entries with their object ids, so that readers can reuse what did not change. */
  listEntries(repo: string, commit: string, path: string): Promise<TreeEntry[]>;
  /** Files that differ between two commits; `before` may be the zero id. */
  changedFiles(repo: string, before: string, after: string): Promise<ChangedFile[]>;
  /**
   * One commit on the branch with these changes, staged: readable by this
   * process at once, on disk once `durable` resolves. Commits of one process
   * form one chain in the order they were staged; writes to one repository
   * are serialised across processes too.
   */
  stage(repo: string, options: CommitOptions): Promise<Staged>;
  /** `stage`, then wait until it is durable. */
  commit(repo: string, options: CommitOptions): Promise<string>;
  isAncestor(repo: string, ancestor: string, commit: string): Promise<boolean>;
  /** Makes sure `commit` (pushed somewhere else) can be read; a no-op where the store is the origin. */
  ensureCommit(repo: string, commit: string): Promise<void>;
  /** Resolves once every commit staged so far is durable and published where others read them. */
  flush(repo: string): Promise<void>;
  /** The branch's commits, newest first. */
  log(repo: string, depth?: number): Promise<{ oid: string; message: string }[]>;
  /** The commits from `head` back along first parents, newest first, read as the caller goes. */
  history(repo: string, head: string): AsyncIterable<{ oid: string; message: string }>;
}

export interface Consumer {
  cancel(): Promise<void>;
}

export interface Delivery {
  /** Acks the message before the handler ends: an attempt that may outlive the broker's patience is held by heartbeats instead. */
  ackNow(): void;
  /** The broker delivered this message before, to a consumer that did not ack it. */
  redelivered: boolean;
}

/**
 * The transport between the stages, typed by channel (core/channels.ts).
 * Messages are decoded through their channel's schema before any handler
 * sees them; one that does not decode is dead-lettered with the schema's error.
 */
export interface Queue {
  /** Resolves once the broker has the message for good (publisher confirm). */
  publish<Q extends WorkQueue>(queue: Q, message: Channels[Q]): Promise<void>;
  /**
   * Delivers at least once, at most `prefetch` unacked at a time. The message
   * is acked when the handler resolves and given back when it throws.
   */
  consume<Q extends 'todo' | 'done' | 'large'>(queue: Q, options: { prefetch: number }, handler: (message: Channels[Q], delivery: Delivery) => Promise<void>): Promise<Consumer>;
  /** Tells every live subscriber; nothing is kept for those that subscribe later. */
  broadcast<F extends Fanout>(fanout: F, message: Channels[F]): Promise<void>;
  subscribe<F extends Fanout>(fanout: F, handler: (message: Channels[F]) => void): Promise<Consumer>;
  /** True when `queue` was missing when this process connected, or vanished since: whatever it held is gone. */
  lost(queue: WorkQueue): boolean;
  close(): Promise<void>;
}

/** Time, so that leases, retries and backoffs can be tested without waiting. */
export interface Clock {
  now(): number;
  /** Calls `fn` once after `ms`; returns a function that cancels it. */
  after(ms: number, fn: () => void): () => void;
}

/** A worker's files, taken from the config repository at one commit. */
export interface WorkerSource {
  name: string;
  commit: string;
  /** The tree id of `workers/<name>/` at that commit: what its image is built from, whatever else the commit changed. */
  tree?: string;
  /** A local folder holding `workers/<name>/` as it was at that commit. */
  dir: string;
}

export interface ExecRequest {
  /** Aborting kills the task: the run was cancelled, or the worker is shutting down. */
  signal?: AbortSignal;
  /** What `prepare` returned. */
  image: string;
  argv: string[];
  timeoutMs: number;
  limits: Limits;
  labels: Record<string, string>;
  /** Called with output as it comes (within the cap), for live logs. */
  onOutput?: (chunk: Buffer) => void;
  /** Environment of the task: GITJOBS_RUN, GITJOBS_TASK, GITJOBS_ATTEMPT. */
  env: Record<string, string>;
  outputCap: number;
  /** The task may write up to this many bytes under /out (`$GITJOBS_OUT`); what it leaves comes back in `files`. */
  out?: { maxBytes: number };
  /** Files shown to it read-only under /in (`$GITJOBS_IN`), paths relative to it. */
  inputs?: import('./files.js').FileData[];
}

export interface ExecResult {
  exitCode: number | null;
  stdout: string;
  /** stdout and stderr interleaved. */
  output: string;
  durationMs: number;
  timedOut: boolean;
  truncated: boolean;
  /** Killed through `signal`. */
  aborted?: boolean;
  /** What it left under /out (asked for with `out`): regular files, paths relative to /out. */
  files?: import('./files.js').FileData[];
  /** What it left under /out could not be kept (past its cap): the attempt fails with this. */
  outError?: string;
}

/** Runs one task attempt somewhere isolated. */
export interface Executor {
  readonly kind: string;
  /** Throws a ServiceUnavailableError that says how to fix it. */
  check(): Promise<void>;
  /** Builds (or finds) what runs this worker's tasks; returns an id to pass to `run`. */
  prepare(source: WorkerSource): Promise<string>;
  /** The id of the base image worker images are built on now, where there is one. */
  baseImage?(): Promise<string | undefined>;
  run(request: ExecRequest): Promise<ExecResult>;
  /** Removes what crashed workers of this host left running; returns how many. */
  reapOrphans?(host: string): Promise<number>;
}

/** Where the repositories are hosted: the built-in host, GitHub or Gitea. */
export interface Forge {
  readonly kind: string;
  cloneUrl(repo: string): string;
  /** Where a person reads one commit. */
  commitUrl(repo: string, sha: string): string;
}

export interface CommitStatus {
  state: 'pending' | 'success' | 'failure' | 'error';
  description: string;
  targetUrl?: string;
  context: string;
}

/** A forge that shows a status on a commit (GitHub, Gitea). */
export interface CommitStatuses {
  setStatus(repo: string, sha: string, status: CommitStatus): Promise<void>;
}

/** Told of a run's progress once it is durable in tracking: statuses, dashboards, metrics. */
export interface RunObserver {
  runQueued?(run: { id: string; todoCommit: string; taskCount: number }): void;
  /** A project file that could not run, recorded as a rejected run. */
  runRejected?(run: { id: string; todoCommit: string; error?: string }): void;
  runProgress?(run: { id: string; todoCommit: string }, progress: { done: number; failed: number; total: number }): void;
  runFinished?(run: { id: string; todoCommit: string; state: string }, progress: { done: number; failed: number; total: number }): void;
  /** A task's transition, committed as `commit`. */
  taskChanged?(change: { run: string; task: import('./task.js').TaskRecord; commit: string; subject: string }): void;
  /** A commit to tracking or done took this long to become durable. */
  committed?(repo: string, ms: number): void;
}

/** Several observers as one. */
export function combineObservers(...observers: (RunObserver | undefined)[]): RunObserver {
  const all = observers.filter((o): o is RunObserver => o !== undefined);
  return {
    runQueued: (r) => all.forEach((o) => o.runQueued?.(r)),
    runRejected: (r) => all.forEach((o) => o.runRejected?.(r)),
    runProgress: (r, p) => all.forEach((o) => o.runProgress?.(r, p)),
    runFinished: (r, p) => all.forEach((o) => o.runFinished?.(r, p)),
    taskChanged: (c) => all.forEach((o) => o.taskChanged?.(c)),
    committed: (repo, ms) => all.forEach((o) => o.committed?.(repo, ms)),
  };
}

/** Queues that people create and use over HTTP (the prototype's queue web services). */
export interface QueueService {
  create(name: string): Promise<void>;
  /** False when there is no such queue. */
  send(name: string, body: Buffer, contentType: string): Promise<boolean>;
  /** One message, `empty` when there is none, `missing` when there is no such queue. */
  receive(name: string): Promise<{ body: Buffer; contentType: string } | 'empty' | 'missing'>;
  /** False when there is no such queue. */
  remove(name: string): Promise<boolean>;
}

/** What the dispatcher and the collector both work with: the repositories, the queues, the settings and the time. */
export interface StageOptions {
  store: GitStore;
  queue: Queue;
  settings: import('./settings.js').Settings;
  /** Clone URL of the config repository, as workers will fetch it. */
  configUrl: string;
  log: import('./logger.js').Logger;
  clock?: Clock;
  observer?: RunObserver;
}
