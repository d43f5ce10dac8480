/**
 * The ports: what the core needs from the outside world, named after that
 * need. One adapter per technology implements each (src/adapters/...).
 */
import type { PushEvent } from './events.js';
import type { Limits } from './messages.js';

export interface FileChange {
  path: string;
  /** null deletes the file. */
  content: string | Uint8Array | null;
}

export interface CommitOptions {
  changes: FileChange[];
  message: string;
  expectedHead?: string | undefined;
}

export interface ChangedFile {
  path: string;
  status: 'added' | 'modified' | 'deleted';
}

/** The repositories gitjobs keeps: read what was pushed, write the audit log. */
export interface GitStore {
  head(repo: string): Promise<string | undefined>;
  readFile(repo: string, commit: string, path: string): Promise<string | undefined>;
  listDir(repo: string, commit: string, path: string): Promise<string[]>;
  /** A folder's entries with their object ids, so that readers can reuse what did not change. */
  listEntries(repo: string, commit: string, path: string): Promise<TreeEntry[]>;
  /** Files that differ between two commits; `before` may be the zero id. */
  changedFiles(repo: string, before: string, after: string): Promise<ChangedFile[]>;
  /**
   * One commit on the branch with these changes; returns its id. Writes to one
   * repository are serialised, across processes too. With `expectedHead`, the
   * commit is made only if the branch is still there, else a ConflictError
   * says to read again; without it, the changes go on top of whatever is there.
   */
  commit(repo: string, options: CommitOptions): Promise<string>;
  isAncestor(repo: string, ancestor: string, commit: string): Promise<boolean>;
  /** Makes sure `commit` (pushed somewhere else) can be read; a no-op where the store is the origin. */
  ensureCommit(repo: string, commit: string): Promise<void>;
  /** Publishes this repository's commits where others read them; resolves once they are there. */
  flush(repo: string): Promise<void>;
  /** The branch's commits, newest first. */
  log(repo: string, depth?: number): Promise<{ oid: string; message: string }[]>;
  /** The commits from `head` back along first parents, newest first, read as the caller goes. */
  history(repo: string, head: string): AsyncIterable<{ oid: string; message: string }>;
}

export interface TreeEntry {
  name: string;
  oid: string;
  type: 'blob' | 'tree' | 'commit';
}

export type QueueName = 'todo' | 'done' | 'dead';
export type Broadcast = 'control' | 'output';

export interface Consumer {
  cancel(): Promise<void>;
}

/** The transport between dispatcher, workers and collector. */
export interface Queue {
  /** Resolves once the broker has confirmed the message. */
  publish(queue: QueueName, body: unknown): Promise<void>;
  /** Tells every live subscriber (fanout, not kept for those that start later): `control` or `output`. */
  broadcast(body: unknown, exchange?: Broadcast): Promise<void>;
  onBroadcast(handler: (content: Buffer) => void, exchange?: Broadcast): Promise<Consumer>;
  /**
   * Acks a message after the handler resolves; requeues it if the handler
   * throws. A handler may call `ackNow` to ack early (a task that will run
   * longer than the broker lets a delivery stay unacked).
   */
  consume(queue: QueueName, options: { prefetch: number }, handler: (content: Buffer, ackNow: () => void) => Promise<void>): Promise<Consumer>;
  close(): Promise<void>;
}

/** A worker's files, taken from the config repository at one commit. */
export interface WorkerSource {
  name: string;
  commit: string;
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
}

/** Runs one task attempt somewhere isolated. */
export interface Executor {
  readonly kind: string;
  /** Throws a ServiceUnavailableError that says how to fix it. */
  check(): Promise<void>;
  /** Builds (or finds) what runs this worker's tasks; returns an id to pass to `run`. */
  prepare(source: WorkerSource): Promise<string>;
  run(request: ExecRequest): Promise<ExecResult>;
  /** Removes what crashed workers of this host left running; returns how many. */
  reapOrphans?(host: string): Promise<number>;
}

/** Where the repositories are hosted and where pushes come from. */
export interface Forge {
  readonly kind: string;
  cloneUrl(repo: string): string;
  onPush(listener: (event: PushEvent) => void): void;
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

/** Told of a run's progress as it is committed: statuses, dashboards, metrics. */
export interface RunObserver {
  runQueued?(run: { id: string; todoCommit: string; tasks: string[] }): void;
  runProgress?(run: { id: string; todoCommit: string }, progress: { done: number; failed: number; total: number }): void;
  runFinished?(run: { id: string; todoCommit: string; state: string }, progress: { done: number; failed: number; total: number }): void;
  /** A task's transition, committed as `commit`. */
  taskChanged?(change: { run: string; task: import('./task.js').TaskRecord; commit: string; subject: string }): void;
  /** A commit to tracking or done took this long. */
  committed?(repo: string, ms: number): void;
}

/** Several observers as one. */
export function combineObservers(...observers: (RunObserver | undefined)[]): RunObserver {
  const all = observers.filter((o): o is RunObserver => o !== undefined);
  return {
    runQueued: (r) => all.forEach((o) => o.runQueued?.(r)),
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
