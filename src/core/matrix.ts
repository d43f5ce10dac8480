/**
 * A task with a `matrix` stands for one task per combination of its
 * values, as GitHub Actions' `strategy.matrix` does:
 *
 *   {"id": "train", "run": "train --lr {lr} --seed {seed}",
 *    "matrix": {"lr": [0.1, 0.01], "seed": [1, 2, 3],
 *               "exclude": [{"lr": 0.01, "seed": 3}],
 *               "include": [{"lr": 0.5, "seed": 9}, {"lr": 0.1, "note": "baseline"}]}}
 *
 * - every value of every key is combined with every other (the keys' order
 *   is the order of the combinations and of the parts of an id);
 * - `exclude` drops each combination that has all of an entry's values;
 * - `include` then adds to each combination that has all of the entry's
 *   values for the matrix's own keys the entry's other keys; an entry that
 *   matches no combination is a combination of its own;
 * - `{key}` in `run` (the shell line, or each argument) is the value; braces
 *   around anything else are left alone (`awk '{print $1}'` keeps working);
 * - each task's id is the template's, with `{key}` placeholders if it has
 *   them (`"id": "train-{lr}-{seed}"`), else with `_key-value` appended for
 *   each matrix key: `train_lr-0.1_seed-1`.
 *
 * The number of tasks is known before any is made, so a matrix past the
 * project's task limit is refused without building it.
 */
import { z } from 'zod';
import type { ProjectProblem } from './errors.js';
import { isValidId } from './ids.js';

export type MatrixValue = string | number | boolean;
export type Combination = Record<string, MatrixValue>;

const KEY = /^[A-Za-z_][A-Za-z0-9_]{0,31}$/;
/** Values per key: a sweep longer than this is better generated than listed. */
export const MATRIX_MAX_VALUES = 1_000;
const RESERVED = new Set(['include', 'exclude']);

const value = z.union([z.string().max(256), z.number(), z.boolean()], { error: 'expected a string, a number or true/false' });
const entry = z.record(z.string().regex(KEY, { error: 'a matrix key is a name: letters, digits and _, not starting with a digit' }), value);

export const matrixSchema = z
  .object({
    include: z.array(entry).max(MATRIX_MAX_VALUES).optional(),
    exclude: z.array(entry).max(MATRIX_MAX_VALUES).optional(),
  })
  .catchall(z.array(value, { error: 'expected a list of values' }).min(1, { error: 'a matrix key needs at least one value' }).max(MATRIX_MAX_VALUES, { error: `more than ${MATRIX_MAX_VALUES} values` }))
  .superRefine((m, ctx) => {
    const keys = axesOf(m);
    for (const k of keys) if (!KEY.test(k)) ctx.addIssue({ code: 'custom', path: [k], message: 'a matrix key is a name: letters, digits and _, not starting with a digit' });
    if (keys.length === 0 && !m.include?.length) ctx.addIssue({ code: 'custom', path: [], message: 'a matrix needs at least one key with a list of values, or an include' });
    (m.exclude ?? []).forEach((e, i) => {
      for (const k of Object.keys(e)) if (!keys.includes(k)) ctx.addIssue({ code: 'custom', path: ['exclude', i, k], message: `"${k}" is not a key of this matrix (${keys.join(', ') || 'none'})` });
    });
  });

export type Matrix = z.infer<typeof matrixSchema>;

/** The matrix's own keys, in the order they were written. */
export function axesOf(m: Matrix): string[] {
  return Object.keys(m).filter((k) => !RESERVED.has(k));
}

const axisValues = (m: Matrix, k: string) => m[k] as MatrixValue[];

/** How many combinations there are at most (before `exclude`), without making any. */
export function matrixSize(m: Matrix): number {
  const axes = axesOf(m);
  const product = axes.length ? axes.reduce((n, k) => n * axisValues(m, k).length, 1) : 0;
  return product + (m.include?.length ?? 0);
}

const matches = (c: Combination, e: Combination, keys: string[]) => keys.every((k) => !(k in e) || c[k] === e[k]);

/** The combinations, in order: the product of the keys, less `exclude`, with `include` applied. */
export function combinations(m: Matrix): Combination[] {
  const axes = axesOf(m);
  let out: Combination[] = axes.length ? [{}] : [];
  for (const k of axes) out = out.flatMap((c) => axisValues(m, k).map((v) => ({ ...c, [k]: v })));
  out = out.filter((c) => !(m.exclude ?? []).some((e) => Object.keys(e).every((k) => c[k] === e[k])));
  const base = out.length;
  for (const inc of m.include ?? []) {
    const own = Object.keys(inc).filter((k) => axes.includes(k));
    const extra = Object.keys(inc).filter((k) => !axes.includes(k));
    // An entry adds its other keys to the combinations it matches, never overwriting one of their values.
    const targets = extra.length ? out.slice(0, base).filter((c) => matches(c, inc, own) && extra.every((k) => !(k in c) || c[k] === inc[k])) : [];
    const exact = out.some((c) => Object.keys(inc).every((k) => c[k] === inc[k]));
    if (targets.length) for (const c of targets) for (const k of extra) c[k] = inc[k]!;
    else if (!exact) out.push({ ...inc });
  }
  return out;
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** `{key}` replaced by the combination's value wherever the key is one of its; anything else in braces is kept. */
export function substitute(text: string, c: Combination): string {
  return text.replace(PLACEHOLDER, (whole, k: string) => (k in c ? String(c[k]) : whole));
}

export function hasPlaceholder(text: string): boolean {
  return new RegExp(PLACEHOLDER.source).test(text);
}

/** A value as it appears in a generated id: characters an id cannot hold become `_`. */
function idPart(v: MatrixValue): string {
  return String(v).replace(/[^A-Za-z0-9.-]+/g, '_').replace(/\.{2,}/g, '.');
}

export function matrixId(template: string, c: Combination, axes: string[]): string {
  if (hasPlaceholder(template)) return substitute(template, c);
  const keys = [...axes.filter((k) => k in c), ...Object.keys(c).filter((k) => !axes.includes(k))];
  return [template, ...keys.map((k) => `${k}-${idPart(c[k]!)}`)].join('_');
}

export interface MatrixTask<T> {
  id: string;
  run: T;
  values: Combination;
}

/** The tasks a matrix task stands for; `at` is its JSON path, for problems (an id that is not valid). */
export function expandMatrix<T extends string | string[]>(template: { id: string; run: T; matrix: Matrix }, at: string): { tasks: MatrixTask<T>[]; problems: ProjectProblem[] } {
  const axes = axesOf(template.matrix);
  const problems: ProjectProblem[] = [];
  const tasks = combinations(template.matrix).map((c) => {
    const run = (typeof template.run === 'string' ? substitute(template.run, c) : template.run.map((a) => substitute(a, c))) as T;
    return { id: matrixId(template.id, c, axes), run, values: c };
  });
  const bad = tasks.find((t) => !isValidId(t.id));
  if (bad) {
    problems.push({
      path: `${at}.id`,
      message: `the combination ${JSON.stringify(bad.values)} gives the id ${JSON.stringify(bad.id)}, which is not 1 to 64 characters of A-Z a-z 0-9 . _ - (name the task with placeholders, such as "train-{seed}")`,
    });
  }
  return { tasks, problems };
}
