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
  /** Lower resource limits than the operator's, when the project asks for them. */
  limits?: RequestedLimits;
}

export const DEFAULT_TIMEOUT_MS = 10 * 60_000;
export const MAX_RETRIES = 10;

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

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? Math.floor(value) : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?b?)\s*$/i.exec(value);
  if (!m) return undefined;
  const n = Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!);
  return n > 0 ? n : undefined;
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

const common = {
  project: z
    .string()
    .refine(isValidId, { error: 'must be 1 to 64 characters of A-Z a-z 0-9 . _ - (and no "..")' })
    .optional(),
  limits: limits.optional(),
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
    .min(1, { error: 'a project needs at least one task' })
    .max(PROJECT_LIMITS.tasks, { error: `more than ${PROJECT_LIMITS.tasks} tasks` }),
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
  phrase: z.string().max(PROJECT_LIMITS.commandChars, { error: `phrase longer than ${PROJECT_LIMITS.commandChars} characters` }),
  url: z.string().optional(),
});
const prototypeProject = z
  .array(prototypeTask)
  .min(1, { error: 'a project needs at least one task' })
  .max(PROJECT_LIMITS.tasks, { error: `more than ${PROJECT_LIMITS.tasks} tasks` });

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

/** Where nesting first goes deeper than `max`, found without parsing (a deep document can exhaust a parser). */
function tooDeep(text: string, max: number): { line: number; column: number } | undefined {
  let depth = 0;
  let inString = false;
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \\ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 10) {
      line++;
      lineStart = i + 1;
    } else if (c === 91 || c === 123) {
      if (++depth > max) return { line, column: i - lineStart + 1 };
    } else if (c === 93 || c === 125) depth--;
  }
  return undefined;
}

function parseJson(file: string, text: string): unknown {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > PROJECT_LIMITS.fileBytes) {
    throw new ProjectError(file, [{ path: '$', message: `file is ${bytes} bytes; a project file may be at most ${PROJECT_LIMITS.fileBytes} bytes` }]);
  }
  const deep = tooDeep(text, PROJECT_LIMITS.depth);
  if (deep) throw new ProjectError(file, [{ path: '$', message: `nested deeper than ${PROJECT_LIMITS.depth} levels (line ${deep.line}, column ${deep.column})` }]);
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
    const project = settingsOf(file, r.data, 'nqueens', 'sum');
    return { ...project, tasks: nqueensTasks(r.data.nqueens.n).map((t) => ({ ...t, timeoutMs: project.timeoutMs })) };
  }

  if (!('tasks' in doc)) {
    const r = tasksProject.safeParse(doc);
    const others = r.success ? [] : problemsOf(r.error).filter((p) => p.path !== '$.tasks');
    throw new ProjectError(file, [{ path: '$', message: 'expected "tasks" (a list of {"id", "run"}) or "nqueens" ({"n": N})' }, ...others]);
  }

  const r = tasksProject.safeParse(doc);
  if (!r.success) throw new ProjectError(file, problemsOf(r.error));
  const p = r.data;
  const ids = p.tasks.map((t) => t.id);
  const dup = duplicates(ids);
  if (dup.length) throw new ProjectError(file, dupProblems(dup, ids, (i) => `$.tasks[${i}].id`));
  const project = settingsOf(file, p, 'tasks', 'concat');
  const timeoutMs = project.timeoutMs;
  return {
    ...project,
    tasks: p.tasks.map((t) => ({
      id: t.id,
      argv: typeof t.run === 'string' ? ['sh', '-c', t.run] : t.run,
      timeoutMs: t.timeout !== undefined ? parseDuration(t.timeout)! : timeoutMs,
    })),
  };
}

/** The fields both object shapes share, with their defaults. */
function settingsOf(file: string, p: z.infer<typeof tasksProject> | z.infer<typeof nqueensProject>, format: Project['format'], reduceDefault: ReducerName): Omit<Project, 'tasks'> {
  return {
    ...requestedLimits(p.limits),
    name: p.project ?? nameFromFile(file),
    format,
    worker: p.worker ?? 'default',
    timeoutMs: p.timeout !== undefined ? parseDuration(p.timeout)! : DEFAULT_TIMEOUT_MS,
    retries: p.retries ?? 0,
    reduce: p.reduce ?? reduceDefault,
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

function dupProblems(dup: string[], ids: string[], at: (i: number) => string): ProjectProblem[] {
  return dup.map((d) => {
    const places = ids.flatMap((x, i) => (x === d ? [i] : []));
    return { path: at(places[1]!), message: `duplicate task id ${JSON.stringify(d)} (first used at ${at(places[0]!)})` };
  });
}
