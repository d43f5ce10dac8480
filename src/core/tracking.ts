/**
 * The tracking reducer: pure functions from (records, event) to (new records,
 * file changes, commit message). The collector applies them and commits; this
 * file knows nothing of Git or queues.
 */
import { formatDuration, } from './duration.js';
import { layout } from './layout.js';
import type { FinishedEvent, TaskEvent } from './messages.js';
import type { FileChange } from './ports.js';
import type { Project } from './project.js';
import { reduce, ReduceError, type ReducerName } from './reduce.js';
import { allFinal, progress, type RunRecord } from './run.js';
import { assertTransition, isFinal, type TaskRecord } from './task.js';
import { commitMessage, transitionSubject } from './transition.js';

export interface Commitable {
  changes: FileChange[];
  message: string;
}

const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n';

/** Stdout up to this size stays in the task record; larger goes to its own file. */
const STDOUT_INLINE = 64 * 1024;

function taskFileContent(task: TaskRecord): string {
  const { stdout, ...rest } = task;
  return json(task.stdoutFile ? rest : task);
}

function tail(text: string, bytes: number): string {
  return text.length <= bytes ? text : '…' + text.slice(text.length - bytes);
}

export function queuedRun(args: {
  runId: string;
  file: string;
  project: Project;
  todoCommit: string;
  configCommit: string;
  now: string;
  /** Set when this run is a re-run of another. */
  rerunOf?: string;
}): { run: RunRecord; tasks: TaskRecord[] } & Commitable {
  const { runId, file, project, todoCommit, configCommit, now, rerunOf } = args;
  const run: RunRecord = {
    id: runId,
    project: project.name,
    file,
    format: project.format,
    state: 'queued',
    todoCommit,
    configCommit,
    worker: project.worker,
    reduce: project.reduce,
    ...(project.limits ? { limits: project.limits } : {}),
    tasks: project.tasks.map((t) => t.id),
    createdAt: now,
    ...(rerunOf ? { rerunOf } : {}),
  };
  const tasks: TaskRecord[] = project.tasks.map((t) => ({
    run: runId,
    id: t.id,
    state: 'queued',
    attempts: 0,
    maxAttempts: project.retries + 1,
    argv: t.argv,
    timeoutMs: t.timeoutMs,
    queuedAt: now,
  }));
  const changes: FileChange[] = [
    { path: layout.runFile(runId), content: json(run) },
    ...tasks.map((t) => ({ path: layout.taskFile(runId, t.id), content: taskFileContent(t) })),
  ];
  const n = tasks.length;
  const message = commitMessage(
    `${runId}: queued (${n} task${n === 1 ? '' : 's'} from ${file}${rerunOf ? `, re-run of ${rerunOf}` : ''})`,
    { 'Todo-Commit': todoCommit, 'Config-Commit': configCommit, ...(rerunOf ? { 'Rerun-Of': rerunOf } : {}) },
    `Project ${JSON.stringify(project.name)}, worker ${project.worker}, reduce ${project.reduce}, ${project.retries} retr${project.retries === 1 ? 'y' : 'ies'}.`,
  );
  return { run, tasks, changes, message };
}

export function rejectedRun(args: {
  runId: string;
  file: string;
  problems: { path: string; message: string }[];
  todoCommit: string;
  now: string;
  rerunOf?: string;
}): { run: RunRecord } & Commitable {
  const { runId, file, problems, todoCommit, now, rerunOf } = args;
  const error = `${file}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`;
  const run: RunRecord = {
    id: runId,
    project: file.replace(/^.*\//, '').replace(/\.json$/i, ''),
    file,
    state: 'rejected',
    todoCommit,
    tasks: [],
    createdAt: now,
    finishedAt: now,
    error,
    problems,
    ...(rerunOf ? { rerunOf } : {}),
  };
  const body = problems.map((p) => `${file} ${p.path}: ${p.message}`).join('\n');
  return {
    run,
    changes: [{ path: layout.runFile(runId), content: json(run) }],
    message: commitMessage(`${runId}: rejected (${problems.length} problem${problems.length === 1 ? '' : 's'} in ${file})`, { 'Todo-Commit': todoCommit, ...(rerunOf ? { 'Rerun-Of': rerunOf } : {}) }, body),
  };
}

export type Applied =
  | { kind: 'ignored'; reason: string }
  | ({ kind: 'applied'; task: TaskRecord; retry: boolean } & Commitable);

/**
 * Applies a worker's event to a task. Duplicates and events of stale attempts
 * are ignored: the queues deliver at least once.
 */
export function applyEvent(run: RunRecord, task: TaskRecord, event: TaskEvent): Applied[] {
  const trailers = {
    'Todo-Commit': run.todoCommit,
    'Config-Commit': run.configCommit,
    'Worker-Host': event.host,
    Image: event.image,
    Attempt: `${event.attempt}/${task.maxAttempts}`,
  };
  if (event.kind === 'heartbeat') return [{ kind: 'ignored', reason: 'heartbeats are not transitions' }];
  if (isFinal(task)) return [{ kind: 'ignored', reason: `task is already ${task.state}` }];
  if (event.attempt < task.attempts) return [{ kind: 'ignored', reason: `attempt ${event.attempt} is stale (task is at attempt ${task.attempts})` }];

  const out: Applied[] = [];
  let current = task;
  const startNeeded = current.state === 'queued' && event.attempt === current.attempts + 1;
  const takeover =
    event.kind === 'started' && current.state === 'running' && event.attempt === current.attempts && event.worker !== undefined && current.worker?.id !== undefined && current.worker.id !== event.worker;
  if (takeover) {
    const next: TaskRecord = { ...current, startedAt: event.at, worker: { host: event.host, image: event.image, id: event.worker! } };
    if (event.kind === 'started' && event.leaseMs) next.leaseMs = event.leaseMs;
    return [
      {
        kind: 'applied',
        task: next,
        retry: false,
        changes: [{ path: layout.taskFile(run.id, task.id), content: taskFileContent(next) }],
        message: commitMessage(
          transitionSubject(run.id, task.id, 'running', 'running', `attempt ${event.attempt}/${task.maxAttempts} redelivered to ${event.worker}; ${current.worker!.id} stopped reporting`),
          trailers,
        ),
      },
    ];
  }
  if (event.kind === 'started' || startNeeded) {
    if (!startNeeded) return [{ kind: 'ignored', reason: `already ${current.state} at attempt ${current.attempts}` }];
    assertTransition(`${run.id}/${task.id}`, 'queued', 'running');
    const next: TaskRecord = { ...current, state: 'running', attempts: event.attempt, startedAt: event.at, worker: { host: event.host, image: event.image, ...(event.worker ? { id: event.worker } : {}) } };
    if (event.kind === 'started' && event.leaseMs) next.leaseMs = event.leaseMs;
    else delete next.leaseMs;
    delete next.finishedAt;
    delete next.exitCode;
    delete next.durationMs;
    delete next.timedOut;
    delete next.error;
    out.push({
      kind: 'applied',
      task: next,
      retry: false,
      changes: [{ path: layout.taskFile(run.id, task.id), content: taskFileContent(next) }],
      message: commitMessage(transitionSubject(run.id, task.id, 'queued', 'running', `attempt ${event.attempt}/${task.maxAttempts} on ${event.host}`), trailers),
    });
    current = next;
  }
  if (event.kind === 'finished') {
    if (current.state !== 'running' || current.attempts !== event.attempt) {
      out.push({ kind: 'ignored', reason: `finish of attempt ${event.attempt} while ${current.state} at attempt ${current.attempts}` });
      return out;
    }
    out.push(finish(run, current, event, trailers));
  }
  return out;
}

function finish(run: RunRecord, task: TaskRecord, event: FinishedEvent, trailers: Record<string, string | undefined>): Applied {
  const ok = event.exitCode === 0 && !event.timedOut && !event.error;
  const to = ok ? 'succeeded' : 'failed';
  assertTransition(`${run.id}/${task.id}`, 'running', to);
  const error = event.error ?? (event.timedOut ? `timeout after ${formatDuration(task.timeoutMs)}` : ok ? undefined : `exit ${event.exitCode}`);
  const next: TaskRecord = {
    ...task,
    state: to,
    finishedAt: event.at,
    exitCode: event.exitCode,
    durationMs: event.durationMs,
    timedOut: event.timedOut,
    outputTail: tail(event.output, 2048),
    stdout: event.stdout,
    outputTruncated: event.truncated,
    worker: { host: event.host, image: event.image, ...(event.worker ? { id: event.worker } : {}) },
  };
  delete next.notBefore;
  delete next.leaseMs;
  if (error) next.error = error;
  else delete next.error;
  delete next.stdoutFile;
  const extra: FileChange[] = [];
  if (event.stdout.length > STDOUT_INLINE) {
    next.stdoutFile = layout.stdoutFile(run.id, task.id);
    extra.push({ path: next.stdoutFile, content: event.stdout });
  }
  const retry = !ok && task.attempts < task.maxAttempts;
  const detail = [
    event.timedOut ? `timeout after ${formatDuration(task.timeoutMs)}` : event.error ? event.error.split('\n')[0]!.slice(0, 120) : `exit ${event.exitCode}`,
    formatDuration(event.durationMs),
    task.maxAttempts > 1 ? `attempt ${task.attempts}/${task.maxAttempts}` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  return {
    kind: 'applied',
    task: next,
    retry,
    changes: [
      { path: layout.taskFile(run.id, task.id), content: taskFileContent(next) },
      { path: layout.logFile(run.id, task.id), content: event.output },
      ...extra,
    ],
    message: commitMessage(transitionSubject(run.id, task.id, 'running', to, detail), trailers),
  };
}

/** A failed attempt with attempts left goes back to `queued`. */
export function requeue(run: RunRecord, task: TaskRecord, now: string, delayMs = 0): { task: TaskRecord } & Commitable {
  assertTransition(`${run.id}/${task.id}`, task.state, 'queued');
  const next: TaskRecord = { ...task, state: 'queued', queuedAt: now, notBefore: new Date(Date.parse(now) + delayMs).toISOString() };
  return {
    task: next,
    changes: [{ path: layout.taskFile(run.id, task.id), content: taskFileContent(next) }],
    message: commitMessage(transitionSubject(run.id, task.id, 'failed', 'queued', `retry: attempt ${task.attempts + 1}/${task.maxAttempts} in ${formatDuration(delayMs)}`), {
      'Todo-Commit': run.todoCommit,
      'Config-Commit': run.configCommit,
    }),
  };
}

/** A run is cancelled: each unfinished task ends `cancelled`, one commit each. */
export function cancelTask(run: RunRecord, task: TaskRecord, reason: string, now: string): { task: TaskRecord } & Commitable {
  assertTransition(`${run.id}/${task.id}`, task.state, 'cancelled');
  const next: TaskRecord = { ...task, state: 'cancelled', finishedAt: now, error: `cancelled: ${reason}` };
  delete next.notBefore;
  return {
    task: next,
    changes: [{ path: layout.taskFile(run.id, task.id), content: taskFileContent(next) }],
    message: commitMessage(transitionSubject(run.id, task.id, task.state, 'cancelled', reason), { 'Todo-Commit': run.todoCommit, 'Config-Commit': run.configCommit }),
  };
}

/** The first task to start moves the run from queued to running. */
export function runStarted(run: RunRecord): RunRecord | undefined {
  return run.state === 'queued' ? { ...run, state: 'running' } : undefined;
}

export interface RunResult {
  run: string;
  project: string;
  file: string;
  state: 'succeeded' | 'failed' | 'cancelled';
  reduce: ReducerName;
  value: unknown;
  error?: string;
  tasks: { id: string; state: string; exitCode: number | null | undefined; durationMs: number | undefined; attempts: number; error?: string }[];
  commits: { todo: string; config: string | undefined; tracking: string };
  finishedAt: string;
}

/**
 * When every task is final: the result for the done repository and the
 * final run record for tracking. A failed task or a reducer error fails the run.
 */
export function completeRun(run: RunRecord, tasks: TaskRecord[], trackingCommit: string, now: string): { result: RunResult; resultChanges: FileChange[]; resultMessage: string; run: RunRecord } {
  if (!allFinal(tasks)) throw new Error(`run ${run.id} is not finished`);
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const ordered = run.tasks.map((id) => byId.get(id)!);
  const failed = ordered.filter((t) => t.state === 'failed');
  const cancelled = ordered.filter((t) => t.state === 'cancelled');
  const reducer = run.reduce ?? 'concat';
  let value: unknown = null;
  let text: string;
  let error: string | undefined;
  if (run.cancelled !== undefined || cancelled.length) {
    const finished = ordered.length - cancelled.length;
    error = `cancelled (${run.cancelled ?? 'by request'}): ${finished} of ${ordered.length} task${ordered.length === 1 ? '' : 's'} had finished`;
    text = `CANCELLED: ${error}\n`;
  } else if (failed.length) {
    error = `${failed.length} of ${ordered.length} task${ordered.length === 1 ? '' : 's'} failed: ${failed.map((t) => `${t.id} (${t.error ?? `exit ${t.exitCode}`})`).join(', ')}`;
    text = `FAILED: ${error}\n`;
  } else {
    try {
      const r = reduce(reducer, ordered.map((t) => ({ task: t.id, stdout: t.stdout ?? '' })));
      value = r.value;
      text = r.text;
    } catch (err) {
      if (!(err instanceof ReduceError)) throw err;
      error = err.message;
      text = `FAILED: ${error}\n`;
    }
  }
  const state = run.cancelled !== undefined || cancelled.length ? 'cancelled' : error ? 'failed' : 'succeeded';
  const result: RunResult = {
    run: run.id,
    project: run.project,
    file: run.file,
    state,
    reduce: reducer,
    value,
    ...(error ? { error } : {}),
    tasks: ordered.map((t) => ({ id: t.id, state: t.state, exitCode: t.exitCode, durationMs: t.durationMs, attempts: t.attempts, ...(t.error ? { error: t.error } : {}) })),
    commits: { todo: run.todoCommit, config: run.configCommit, tracking: trackingCommit },
    finishedAt: now,
  };
  const p = progress(ordered);
  return {
    result,
    resultChanges: [
      { path: layout.resultJson(run.id), content: json(result) },
      { path: layout.resultText(run.id), content: text },
    ],
    resultMessage: commitMessage(`${run.id}: ${state} (${p.done - p.failed}/${p.total} tasks succeeded)`, {
      'Todo-Commit': run.todoCommit,
      'Config-Commit': run.configCommit,
      'Tracking-Commit': trackingCommit,
    }, error),
    run: { ...run, state, finishedAt: now, ...(error ? { error } : {}) },
  };
}

export function runFinishedCommit(run: RunRecord, doneCommit: string, from: string = 'running'): Commitable {
  const final: RunRecord = { ...run, doneCommit };
  return {
    changes: [{ path: layout.runFile(run.id), content: json(final) }],
    message: commitMessage(`${run.id}: ${from} -> ${run.state}${run.error ? ` (${run.error.slice(0, 120)})` : ''}`, {
      'Todo-Commit': run.todoCommit,
      'Config-Commit': run.configCommit,
      'Done-Commit': doneCommit,
    }),
  };
}

export function runRecordChange(run: RunRecord): FileChange {
  return { path: layout.runFile(run.id), content: json(run) };
}
