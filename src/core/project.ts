import { z } from 'zod';
import { parseDuration } from './duration.js';
import { ProjectError, type ProjectProblem } from './errors.js';
import { isValidId } from './ids.js';
import { nqueensTasks, NQUEENS_MAX_N } from './nqueens.js';
import { REDUCERS, type ReducerName } from './reduce.js';

/** One task of a project, normalised: what a worker needs to run it. */
export interface TaskSpec {
  id: string;
  /** Program and arguments; a shell line `run: "a | b"` becomes `["sh", "-c", "a | b"]`. */
  argv: string[];
  timeoutMs: number;
}

/** A project file, normalised from any of the shapes gitjobs accepts. */
export interface Project {
  name: string;
  /** Which shape the file used: the current object, the N-Queens generator, or the prototype's array. */
  format: 'tasks' | 'nqueens' | 'prototype';
  worker: string;
  timeoutMs: number;
  retries: number;
  reduce: ReducerName;
  tasks: TaskSpec[];
}

export const DEFAULT_TIMEOUT_MS = 10 * 60_000;
export const MAX_RETRIES = 10;

/** A union's own message, or "missing" when the field is not there at all. */
const unionError = (message: string) => (issue: { input?: unknown }) => (issue.input === undefined ? 'required field is missing' : message);

const id = z
  .union([z.string(), z.number().int().nonnegative()], { error: unionError('expected a string or a whole number') })
  .transform(String)
  .refine(isValidId, { error: 'must be 1 to 64 characters of A-Z a-z 0-9 . _ - (and no "..")' });

const duration = z
  .union([z.string(), z.number()], { error: unionError('expected a duration such as "60s", "5m" or a number of seconds') })
  .refine((v) => parseDuration(v) !== undefined, { error: 'expected a duration such as "500ms", "60s", "5m", "1h" or a number of seconds' });

const command = z.union(
  [z.string().min(1, { error: 'must not be empty' }), z.array(z.string()).min(1, { error: 'must name a program' })],
  { error: unionError('expected a shell command string or an array of strings [program, ...args]') },
);

const common = {
  project: z.string().min(1).max(128).optional(),
  worker: z.string().refine(isValidId, { error: 'must be a worker folder name: A-Z a-z 0-9 . _ -' }).optional(),
  timeout: duration.optional(),
  retries: z.number().int().min(0).max(MAX_RETRIES).optional(),
  reduce: z.enum(REDUCERS).optional(),
  description: z.string().optional(),
};

const tasksProject = z.strictObject({
  ...common,
  tasks: z
    .array(z.strictObject({ id, run: command, timeout: duration.optional() }))
    .min(1, { error: 'a project needs at least one task' }),
});

const nqueensProject = z.strictObject({
  ...common,
  nqueens: z.strictObject({ n: z.number().int().min(1).max(NQUEENS_MAX_N) }),
});

/** The original prototype's format: an array of tasks that each echo a phrase. */
const prototypeTask = z.object({
  cmd: z.string().min(1),
  id_projet: z.union([z.string(), z.number()]).optional(),
  id_task: id,
  phrase: z.string(),
  url: z.string().optional(),
});
const prototypeProject = z.array(prototypeTask).min(1, { error: 'a project needs at least one task' });

/** Formats a JSON path the way people read them: `$.tasks[1].run`. */
export function jsonPath(path: readonly PropertyKey[]): string {
  let out = '$';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : /^[A-Za-z_$][\w$]*$/.test(String(key)) ? `.${String(key)}` : `[${JSON.stringify(String(key))}]`;
  return out;
}

function problemsOf(error: z.ZodError): ProjectProblem[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return { path: jsonPath(issue.path), message: `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}` };
    }
    if (issue.code === 'invalid_type' && / received undefined$/.test(issue.message)) {
      return { path: jsonPath(issue.path), message: `required field is missing (expected ${issue.expected})` };
    }
    return { path: jsonPath(issue.path), message: issue.message };
  });
}

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = (err as Error).message;
    const pos = /position (\d+)/.exec(message);
    let where = '';
    if (pos) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split('\n').length;
      const column = Number(pos[1]) - before.lastIndexOf('\n');
      where = ` (line ${line}, column ${column})`;
    }
    throw new ProjectError(file, [{ path: '$', message: `not valid JSON${where}: ${message}` }]);
  }
}

function duplicates(ids: string[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const i of ids) (seen.has(i) ? dup : seen).add(i);
  return [...dup];
}

function nameFromFile(file: string): string {
  return file.replace(/^.*\//, '').replace(/\.json$/i, '');
}

/**
 * Parses and validates a project file. Throws a ProjectError that names the
 * file, the JSON path and what is wrong.
 */
export function parseProject(file: string, text: string): Project {
  const doc = parseJson(file, text);

  if (Array.isArray(doc)) {
    const r = prototypeProject.safeParse(doc);
    if (!r.success) throw new ProjectError(file, problemsOf(r.error));
    const ids = r.data.map((t) => t.id_task);
    const dup = duplicates(ids);
    if (dup.length) throw new ProjectError(file, dupProblems(dup, ids, (i) => `$[${i}].id_task`));
    return {
      name: nameFromFile(file),
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
    const p = r.data;
    const timeoutMs = p.timeout !== undefined ? parseDuration(p.timeout)! : DEFAULT_TIMEOUT_MS;
    return {
      name: p.project ?? nameFromFile(file),
      format: 'nqueens',
      worker: p.worker ?? 'default',
      timeoutMs,
      retries: p.retries ?? 0,
      reduce: p.reduce ?? 'sum',
      tasks: nqueensTasks(p.nqueens.n).map((t) => ({ ...t, timeoutMs })),
    };
  }

  if (!('tasks' in doc)) {
    const r = tasksProject.safeParse(doc);
    const others = r.success ? [] : problemsOf(r.error).filter((p) => p.path !== '$.tasks');
    throw new ProjectError(file, [{ path: '$', message: 'expected "tasks" (a list of {"id", "run"}) or "nqueens" ({"n": N})' }, ...others]);
  }

  const r = tasksProject.safeParse(doc);
  if (!r.success) throw new ProjectError(file, problemsOf(r.error));
  const p = r.data;
  const timeoutMs = p.timeout !== undefined ? parseDuration(p.timeout)! : DEFAULT_TIMEOUT_MS;
  const ids = p.tasks.map((t) => t.id);
  const dup = duplicates(ids);
  if (dup.length) throw new ProjectError(file, dupProblems(dup, ids, (i) => `$.tasks[${i}].id`));
  return {
    name: p.project ?? nameFromFile(file),
    format: 'tasks',
    worker: p.worker ?? 'default',
    timeoutMs,
    retries: p.retries ?? 0,
    reduce: p.reduce ?? 'concat',
    tasks: p.tasks.map((t) => ({
      id: t.id,
      argv: typeof t.run === 'string' ? ['sh', '-c', t.run] : t.run,
      timeoutMs: t.timeout !== undefined ? parseDuration(t.timeout)! : timeoutMs,
    })),
  };
}

function dupProblems(dup: string[], ids: string[], at: (i: number) => string): ProjectProblem[] {
  return dup.map((d) => {
    const places = ids.flatMap((x, i) => (x === d ? [i] : []));
    return { path: at(places[1]!), message: `duplicate task id ${JSON.stringify(d)} (first used at ${at(places[0]!)})` };
  });
}
