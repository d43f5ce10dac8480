import { z } from 'zod';
import { parseDuration } from './duration.js';
import { parseSize } from './size.js';
import { ProjectError, type ProjectProblem } from './errors.js';
import { dupProblems, duplicates, parseJson, problemsOf } from './project-json.js';
import { resolveNeeds } from './dag.js';
import { isValidId } from './ids.js';
import { projectNameOf } from './layout.js';
import { nqueensTasks, NQUEENS_MAX_N } from './nqueens.js';
import { expandMatrix, matrixSchema, matrixSize } from './matrix.js';
import { REDUCERS, type ReducerName } from './reduce.js';
import { scheduleSchema } from './cron.js';
import { MAX_RETRIES, retryPolicy, retrySchema, type RetryPolicy } from './retry.js';
import { OUT_CAP_MAX } from './files.js';

/** One task of a project, normalised: what a worker needs to run it. */
export interface TaskSpec {
  id: string;
  /** Program and arguments; a shell line `run: "a | b"` becomes `["sh", "-c", "a | b"]`. */
  argv: string[];
  timeoutMs: number;
  /** Which failures are retried, when the task or its project says (else every failure, `retries` times). */
  retry?: RetryPolicy;
  /** Its result may come from the result cache (`"cache": true` on the task or its project; see core/cache-key.ts). */
  cache?: true;
  /** Task ids that must succeed first (a matrix named in `needs` stands for all its instances). */
  needs?: string[];
  /** `"out"`: the task may write this many bytes under /out, committed to done when it succeeds (core/files.ts). */
  outBytes?: number;
}

/** A project file, normalised from any of the shapes gitjobs accepts. */
export interface Project {
  name: string;
  /** Which shape the file used: the current object, the N-Queens generator, or the prototype's array. */
  format: 'tasks' | 'nqueens' | 'prototype';
  worker: string;
  timeoutMs: number;
  retries: number;
  /** The project's retry policy, which its tasks follow unless they have their own. */
  retry?: RetryPolicy;
  reduce: ReducerName;
  tasks: TaskSpec[];
  /** Lower resource limits than the operator's, when the project asks for them. */
  limits?: RequestedLimits;
  /** `"cache": true`: every task's result may come from the result cache, unless the task says `"cache": false`. */
  cache?: boolean;
  /** `"fail_fast": true`: the first task that fails for good cancels the rest of the run. */
  failFast?: boolean;
  /** `"parallel": N`: at most N of the run's tasks queued or running at once. */
  parallel?: number;
  /** `"schedule": "0 3 * * *"` (cron, UTC): the file runs at each tick instead of when it is pushed. */
  schedule?: string;
  /** `"result": "TASK"`: the run's result is that task's stdout, instead of a reducer's. */
  resultTask?: string;
  /** `"out": true` or a size: every task may write files under /out, up to this many bytes, unless it says `"out": false`. */
  outBytes?: number;
}

export const DEFAULT_TIMEOUT_MS = 10 * 60_000;
export { MAX_RETRIES };
export { jsonPath } from './project-json.js';

/** What a project file from a push may be: beyond these it is refused, saying which rule it broke. */
export const PROJECT_LIMITS = {
  fileBytes: 1024 * 1024,
  tasks: 10_000,
  /** Characters of a task's command, all arguments together. */
  commandChars: 16 * 1024,
  /** Nesting of arrays and objects. */
  depth: 16,
  /** Longest task timeout a project may ask for. */
  timeoutMs: 24 * 3_600_000,
};

/** Resource limits a project may ask for; never above the operator's. */
export interface RequestedLimits {
  memoryBytes?: number;
  nanoCpus?: number;
  pids?: number;
}

/** A union's own message, or "missing" when the field is not there at all. */
const unionError = (message: string) => (issue: { input?: unknown }) => (issue.input === undefined ? 'required field is missing' : message);

const id = z
  .union([z.string(), z.number().int().nonnegative()], { error: unionError('expected a string or a whole number') })
  .transform(String)
  .refine(isValidId, { error: 'must be 1 to 64 characters of A-Z a-z 0-9 . _ - (and no "..")' });

const duration = z
  .union([z.string(), z.number()], { error: unionError('expected a duration such as "60s", "5m" or a number of seconds') })
  .refine((v) => parseDuration(v) !== undefined, { error: 'expected a duration such as "500ms", "60s", "5m", "1h" or a number of seconds' })
  .refine((v) => (parseDuration(v) ?? 0) <= PROJECT_LIMITS.timeoutMs, { error: `at most ${PROJECT_LIMITS.timeoutMs / 3_600_000}h` });

const command = z
  .union([z.string().min(1, { error: 'must not be empty' }), z.array(z.string()).min(1, { error: 'must name a program' })], {
    error: unionError('expected a shell command string or an array of strings [program, ...args]'),
  })
  .refine((c) => (typeof c === 'string' ? c.length : c.reduce((n, a) => n + a.length + 1, 0)) <= PROJECT_LIMITS.commandChars, {
    error: `command longer than ${PROJECT_LIMITS.commandChars} characters`,
  });

const limits = z.strictObject({
  memory: z
    .union([z.string(), z.number()])
    .refine((v) => parseSize(v) !== undefined && parseSize(v)! >= 4 * 1024 * 1024, { error: 'expected a size of at least 4m, such as "256m" or "1g"' })
    .optional(),
  cpus: z.number().positive().max(64).optional(),
  pids: z.number().int().min(8).max(100_000).optional(),
});

/** `"out": true` (the cap, 64m), a lower size such as `"16m"`, or `false`. */
const out = z
  .union([z.boolean(), z.string(), z.number()], { error: unionError('expected true, false or a size such as "16m"') })
  .refine((v) => typeof v === 'boolean' || (parseSize(v) !== undefined && parseSize(v)! <= OUT_CAP_MAX), { error: `expected true, false or a size of at most ${OUT_CAP_MAX / 1024 / 1024}m, such as "16m"` });

/** The cap in bytes an `out` value gives, within the project's own (`undefined`: no /out). */
function outBytesOf(value: boolean | string | number | undefined, projectCap: number | undefined): number | undefined {
  if (value === undefined) return projectCap;
  if (value === false) return undefined;
  const cap = value === true ? (projectCap ?? OUT_CAP_MAX) : parseSize(value)!;
  return Math.min(cap, projectCap ?? OUT_CAP_MAX);
}

const common = {
  project: z
    .string()
    .refine(isValidId, { error: 'must be 1 to 64 characters of A-Z a-z 0-9 . _ - (and no "..")' })
    .optional(),
  limits: limits.optional(),
  worker: z.string().refine(isValidId, { error: 'must be a worker folder name: A-Z a-z 0-9 . _ -' }).optional(),
  timeout: duration.optional(),
  retries: z.number().int().min(0).max(MAX_RETRIES).optional(),
  retry: retrySchema.optional(),
  reduce: z.enum(REDUCERS).optional(),
  description: z.string().optional(),
  cache: z.boolean().optional(),
  schedule: scheduleSchema.optional(),
  out: out.optional(),
};

/** A task's id, or with a matrix a template of ids: `train-{seed}`. */
const taskId = z
  .union([z.string(), z.number().int().nonnegative()], { error: unionError('expected a string or a whole number') })
  .transform(String)
  .refine((v) => isValidId(v.replace(/\{[A-Za-z_][A-Za-z0-9_]*\}/g, 'x')), { error: 'must be 1 to 64 characters of A-Z a-z 0-9 . _ - (and no "..")' });

const task = z
  .strictObject({ id: taskId, run: command, timeout: duration.optional(), matrix: matrixSchema.optional(), retry: retrySchema.optional(), cache: z.boolean().optional(), needs: z.array(z.string().min(1)).max(PROJECT_LIMITS.tasks).optional(), out: out.optional() })
  // Zod runs this even when the id itself was refused (then still the raw value): that error is the one to report.
  .refine((t) => typeof t.id !== 'string' || t.matrix !== undefined || isValidId(t.id), { path: ['id'], error: '{placeholders} in an id need a "matrix"' });

const tasksProject = z
  .strictObject({
  ...common,
  fail_fast: z.boolean().optional(),
  parallel: z.number().int().min(1).max(PROJECT_LIMITS.tasks).optional(),
  result: z.string().min(1).optional(),
  tasks: z
    .array(task)
    .min(1, { error: 'a project needs at least one task' })
    .max(PROJECT_LIMITS.tasks, { error: `more than ${PROJECT_LIMITS.tasks} tasks` }),
  })
  .refine((p) => p.retries === undefined || p.retry === undefined, { path: ['retry'], error: 'give "retries" (a number) or "retry" (a policy), not both' })
  .refine((p) => p.result === undefined || p.reduce === undefined, { path: ['result'], error: 'give "reduce" (a reducer) or "result" (the task whose output is the result), not both' });

const nqueensProject = z.strictObject({
  ...common,
  nqueens: z.strictObject({ n: z.number().int().min(1).max(NQUEENS_MAX_N), tasks: z.number().int().min(1).max(1000).optional() }),
});

/** The original prototype's format: an array of tasks that each echo a phrase. */
const prototypeTask = z.object({
  cmd: z.string().min(1),
  id_projet: z.union([z.string(), z.number()]).optional(),
  id_task: id,
  phrase: z.string().max(PROJECT_LIMITS.commandChars, { error: `phrase longer than ${PROJECT_LIMITS.commandChars} characters` }),
  url: z.string().optional(),
});
const prototypeProject = z
  .array(prototypeTask)
  .min(1, { error: 'a project needs at least one task' })
  .max(PROJECT_LIMITS.tasks, { error: `more than ${PROJECT_LIMITS.tasks} tasks` });

/**
 * Parses and validates a project file. Throws a ProjectError that names the
 * file, the JSON path and what is wrong.
 */
export function parseProject(file: string, text: string): Project {
  const doc = parseJson(file, text, PROJECT_LIMITS);

  if (Array.isArray(doc)) {
    const r = prototypeProject.safeParse(doc);
    if (!r.success) throw new ProjectError(file, problemsOf(r.error));
    const ids = r.data.map((t) => t.id_task);
    const dup = duplicates(ids);
    if (dup.length) throw new ProjectError(file, dupProblems(dup, ids, (i) => `$[${i}].id_task`));
    return {
      name: projectNameOf(file),
      format: 'prototype',
      worker: 'default',
      timeoutMs: DEFAULT_TIMEOUT_MS,
      retries: 0,
      reduce: 'concat',
      tasks: r.data.map((t) => ({
        id: t.id_task,
        // The prototype ran `cmd + phrase` through a shell; the phrase is passed as one argument so it prints unchanged.
        argv: [...t.cmd.trim().split(/\s+/), t.phrase],
        timeoutMs: DEFAULT_TIMEOUT_MS,
      })),
    };
  }

  if (doc === null || typeof doc !== 'object') {
    throw new ProjectError(file, [{ path: '$', message: 'expected an object with "tasks" or "nqueens", or an array of prototype tasks' }]);
  }

  if ('nqueens' in doc) {
    const r = nqueensProject.safeParse(doc);
    if (!r.success) throw new ProjectError(file, problemsOf(r.error));
    const project = settingsOf(file, r.data, 'nqueens', 'sum');
    return { ...project, tasks: nqueensTasks(r.data.nqueens.n, r.data.nqueens.tasks).map((t) => ({ ...t, timeoutMs: project.timeoutMs, ...(project.retry ? { retry: project.retry } : {}), ...(project.cache ? { cache: true as const } : {}), ...(project.outBytes ? { outBytes: project.outBytes } : {}) })) };
  }

  if (!('tasks' in doc)) {
    const r = tasksProject.safeParse(doc);
    const others = r.success ? [] : problemsOf(r.error).filter((p) => p.path !== '$.tasks');
    throw new ProjectError(file, [{ path: '$', message: 'expected "tasks" (a list of {"id", "run"}) or "nqueens" ({"n": N})' }, ...others]);
  }

  const r = tasksProject.safeParse(doc);
  if (!r.success) throw new ProjectError(file, problemsOf(r.error));
  const project = settingsOf(file, r.data, 'tasks', 'concat');
  const tasks = expandTasks(file, r.data.tasks, project);
  if (r.data.result !== undefined && !tasks.some((t) => t.id === r.data.result)) {
    throw new ProjectError(file, [{ path: '$.result', message: `no task ${JSON.stringify(r.data.result)} in this project to take the result from` }]);
  }
  return { ...project, ...(r.data.fail_fast ? { failFast: true } : {}), ...(r.data.parallel ? { parallel: r.data.parallel } : {}), ...(r.data.result ? { resultTask: r.data.result } : {}), tasks };
}

/** The listed tasks, each matrix expanded, with the project's defaults; refused past the task limit or with duplicate ids. */
function expandTasks(file: string, listed: z.infer<typeof task>[], project: Omit<Project, 'tasks'>): TaskSpec[] {
  const total = listed.reduce((n, t) => n + (t.matrix ? matrixSize(t.matrix) : 1), 0);
  if (total > PROJECT_LIMITS.tasks) {
    throw new ProjectError(file, [{ path: '$.tasks', message: `expands to ${total} tasks with its matrices; a project may have at most ${PROJECT_LIMITS.tasks}` }]);
  }
  const problems: ProjectProblem[] = [];
  const out: { spec: TaskSpec; at: string; listed: number }[] = [];
  /** What a name in `needs` stands for: a task's id, or a matrix task's id as written (all its instances). */
  const named = new Map<string, string[]>();
  listed.forEach((t, i) => {
    const at = `$.tasks[${i}]`;
    const timeoutMs = t.timeout !== undefined ? parseDuration(t.timeout)! : project.timeoutMs;
    const retry = t.retry ? retryPolicy(t.retry) : project.retry;
    const cache = t.cache ?? project.cache ?? false;
    const outBytes = outBytesOf(t.out, project.outBytes);
    const spec = (taskId: string, run: string | string[]): TaskSpec => ({
      id: taskId,
      argv: typeof run === 'string' ? ['sh', '-c', run] : run,
      timeoutMs,
      ...(retry ? { retry } : {}),
      ...(cache ? { cache: true as const } : {}),
      ...(outBytes ? { outBytes } : {}),
    });
    const ids = named.get(t.id) ?? [];
    named.set(t.id, ids);
    if (!t.matrix) {
      out.push({ spec: spec(t.id, t.run), at: `${at}.id`, listed: i });
      ids.push(t.id);
      return;
    }
    const m = expandMatrix({ id: t.id, run: t.run, matrix: t.matrix }, at);
    problems.push(...m.problems);
    for (const x of m.tasks) {
      out.push({ spec: spec(x.id, x.run), at: `${at}.id`, listed: i });
      ids.push(x.id);
    }
  });
  problems.push(...resolveNeeds(listed, named, out));
  if (problems.length) throw new ProjectError(file, problems);
  if (out.length === 0) throw new ProjectError(file, [{ path: '$.tasks', message: 'a project needs at least one task (its matrices exclude every combination)' }]);
  const ids = out.map((o) => o.spec.id);
  const dup = duplicates(ids);
  if (dup.length) throw new ProjectError(file, dupProblems(dup, ids, (i) => out[i]!.at));
  return out.map((o) => o.spec);
}

/** The fields both object shapes share, with their defaults. */
function settingsOf(file: string, p: z.infer<typeof tasksProject> | z.infer<typeof nqueensProject>, format: Project['format'], reduceDefault: ReducerName): Omit<Project, 'tasks'> {
  return {
    ...requestedLimits(p.limits),
    name: p.project ?? projectNameOf(file),
    format,
    worker: p.worker ?? 'default',
    timeoutMs: p.timeout !== undefined ? parseDuration(p.timeout)! : DEFAULT_TIMEOUT_MS,
    retries: p.retries ?? p.retry?.max ?? 0,
    ...(p.retry ? { retry: retryPolicy(p.retry) } : {}),
    reduce: p.reduce ?? reduceDefault,
    ...(p.cache !== undefined ? { cache: p.cache } : {}),
    ...(p.schedule !== undefined ? { schedule: p.schedule.trim() } : {}),
    ...(p.out !== undefined && p.out !== false ? { outBytes: outBytesOf(p.out, undefined)! } : {}),
  };
}

function requestedLimits(l: z.infer<typeof limits> | undefined): { limits?: RequestedLimits } {
  if (!l) return {};
  const out: RequestedLimits = {};
  if (l.memory !== undefined) out.memoryBytes = parseSize(l.memory)!;
  if (l.cpus !== undefined) out.nanoCpus = Math.round(l.cpus * 1e9);
  if (l.pids !== undefined) out.pids = l.pids;
  return { limits: out };
}
