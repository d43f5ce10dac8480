/** A project file becomes a run: recorded queued with its tasks, or rejected saying why. */
import { projectNameOf, runPaths, taskFanoutFor } from '../layout.js';
import type { Project } from '../project.js';
import type { RunRecord } from '../run.js';
import type { TaskRecord } from '../task.js';
import { commitMessage } from '../transition.js';
import { runChange, taskChange, taskListChange, type Commitable } from './records.js';

export interface QueueRunOptions {
  runId: string;
  file: string;
  project: Project;
  todoCommit: string;
  configCommit: string;
  now: string;
  /** Set when this run is a re-run of another. */
  rerunOf?: string;
  /** `--no-cache`: its tasks run even when the cache holds their result. */
  noCache?: boolean;
  /** Tasks whose results this run reuses: a task that needs only these is queued at once, not waiting. */
  satisfied?: ReadonlySet<string>;
  /** A scheduled run: the tick it runs for. */
  scheduledFor?: string;
  /** A paragraph that opens the commit's body (what else the commit records). */
  note?: string;
}

export function queuedRun(options: QueueRunOptions): { run: RunRecord; tasks: TaskRecord[] } & Commitable {
  const { runId, file, project, todoCommit, configCommit, now, rerunOf, noCache, satisfied, scheduledFor, note } = options;
  const ids = new Set(project.tasks.map((t) => t.id));
  const cached = project.tasks.some((t) => t.cache);
  const run: RunRecord = {
    id: runId,
    layout: 2,
    taskCount: project.tasks.length,
    taskFanout: taskFanoutFor(project.tasks.length),
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
    ...(cached ? { cache: true as const } : {}),
    ...(cached && noCache ? { noCache: true as const } : {}),
    ...(project.failFast ? { failFast: true as const } : {}),
    ...(project.parallel ? { parallel: project.parallel } : {}),
    ...(scheduledFor ? { scheduledFor } : {}),
    ...(project.resultTask ? { resultTask: project.resultTask } : {}),
  };
  // With `parallel`, the first tasks free to run take the slots; the others wait for one.
  let slots = project.parallel ?? Infinity;
  const tasks: TaskRecord[] = project.tasks.map((t) => {
    // A re-run of some tasks only (bisect) has no others to wait for.
    const needs = t.needs?.filter((n) => ids.has(n));
    const waits = needs?.some((n) => !satisfied?.has(n)) || (!satisfied?.has(t.id) && slots-- <= 0);
    return {
    run: runId,
    id: t.id,
    state: waits ? 'waiting' : 'queued',
    attempts: 0,
    maxAttempts: (t.retry?.max ?? project.retries) + 1,
    ...(t.retry?.on ? { retryOn: t.retry.on } : {}),
    ...(t.retry?.backoffMs !== undefined ? { backoffMs: t.retry.backoffMs } : {}),
    ...(t.cache ? { cache: t.cache } : {}),
    ...(needs?.length ? { needs } : {}),
    ...(t.outBytes ? { outBytes: t.outBytes } : {}),
    argv: t.argv,
    timeoutMs: t.timeoutMs,
    queuedAt: now,
    };
  });
  const paths = runPaths(run);
  const n = tasks.length;
  const message = commitMessage(
    `${runId}: queued (${n} task${n === 1 ? '' : 's'} from ${file}${rerunOf ? `, re-run of ${rerunOf}` : ''}${scheduledFor ? `, scheduled for ${scheduledFor}` : ''})`,
    { 'Todo-Commit': todoCommit, 'Config-Commit': configCommit, ...(rerunOf ? { 'Rerun-Of': rerunOf } : {}) },
    (note ? `${note}\n\n` : '') +
      `Project ${JSON.stringify(project.name)}, worker ${project.worker}, reduce ${project.reduce}, ${project.retries} retr${project.retries === 1 ? 'y' : 'ies'}.` +
      (cached ? ` Result cache: ${noCache ? 'bypassed (--no-cache); results are recorded for later runs' : `on for ${project.tasks.filter((t) => t.cache).length} task(s)`}.` : ''),
  );
  return { run, tasks, changes: [runChange(paths, run), taskListChange(paths, tasks), ...tasks.map((t) => taskChange(paths, t))], message };
}

export interface RejectRunOptions {
  runId: string;
  file: string;
  problems: { path: string; message: string }[];
  todoCommit: string;
  now: string;
  rerunOf?: string;
}

export function rejectedRun(options: RejectRunOptions): { run: RunRecord } & Commitable {
  const { runId, file, problems, todoCommit, now, rerunOf } = options;
  const error = `${file}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`;
  const run: RunRecord = {
    id: runId,
    layout: 2,
    taskCount: 0,
    project: projectNameOf(file),
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
    changes: [runChange(runPaths(run), run)],
    message: commitMessage(`${runId}: rejected (${problems.length} problem${problems.length === 1 ? '' : 's'} in ${file})`, { 'Todo-Commit': todoCommit, ...(rerunOf ? { 'Rerun-Of': rerunOf } : {}) }, body),
  };
}
