/**
 * A project file as JSON: parsed within its limits (size, nesting, found
 * before parsing), and schema problems said the way people read them, with
 * the JSON path of each.
 */
import type { z } from 'zod';
import { ProjectError, type ProjectProblem } from './errors.js';

/** Formats a JSON path the way people read them: `$.tasks[1].run`. */
export function jsonPath(path: readonly PropertyKey[]): string {
  let out = '$';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : /^[A-Za-z_$][\w$]*$/.test(String(key)) ? `.${String(key)}` : `[${JSON.stringify(String(key))}]`;
  return out;
}

export function problemsOf(error: z.ZodError): ProjectProblem[] {
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

export function parseJson(file: string, text: string, limits: { fileBytes: number; depth: number }): unknown {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.fileBytes) {
    throw new ProjectError(file, [{ path: '$', message: `file is ${bytes} bytes; a project file may be at most ${limits.fileBytes} bytes` }]);
  }
  const deep = tooDeep(text, limits.depth);
  if (deep) throw new ProjectError(file, [{ path: '$', message: `nested deeper than ${limits.depth} levels (line ${deep.line}, column ${deep.column})` }]);
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

/** Ids used more than once. */
export function duplicates(ids: string[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const i of ids) (seen.has(i) ? dup : seen).add(i);
  return [...dup];
}

/** Each duplicate id, at its second use, naming the first. */
export function dupProblems(dup: string[], ids: string[], at: (i: number) => string): ProjectProblem[] {
  return dup.map((d) => {
    const places = ids.flatMap((x, i) => (x === d ? [i] : []));
    return { path: at(places[1]!), message: `duplicate task id ${JSON.stringify(d)} (first used at ${at(places[0]!)})` };
  });
}
