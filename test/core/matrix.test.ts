import { describe, expect, it } from 'vitest';
import { combinations as expand, matrixId, substitute, type Matrix } from '../../src/core/matrix.js';
import { ProjectError } from '../../src/core/errors.js';
import { parseProject, PROJECT_LIMITS } from '../../src/core/project.js';

/** Matrices as a project file writes them (the schema's type cannot say that `include` is not an axis). */
const combinations = (m: object) => expand(m as Matrix);

const project = (tasks: unknown[], extra: object = {}) => parseProject('projects/m.json', JSON.stringify({ tasks, ...extra }));

function problems(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProjectError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ProjectError');
}

describe('matrix', () => {
  it('expands every combination, in the order the keys are written, with readable ids and the values in the command', () => {
    const p = project([{ id: 'train', run: 'train --lr {lr} --seed {seed}', matrix: { lr: [0.1, 0.01], seed: [1, 2, 3] } }, { id: 'after', run: 'true' }]);
    expect(p.tasks.map((t) => t.id)).toEqual(['train_lr-0.1_seed-1', 'train_lr-0.1_seed-2', 'train_lr-0.1_seed-3', 'train_lr-0.01_seed-1', 'train_lr-0.01_seed-2', 'train_lr-0.01_seed-3', 'after']);
    expect(p.tasks[4]!.argv).toEqual(['sh', '-c', 'train --lr 0.01 --seed 2']);
    expect(p.tasks[6]!.argv).toEqual(['sh', '-c', 'true']);
  });

  it('substitutes in each argument of an argument list, and leaves other braces alone', () => {
    const p = project([{ id: 'w', run: ['awk', '{print $1}', '{file}.txt', '{nope}'], matrix: { file: ['a', 'b'] } }]);
    expect(p.tasks.map((t) => t.argv)).toEqual([
      ['awk', '{print $1}', 'a.txt', '{nope}'],
      ['awk', '{print $1}', 'b.txt', '{nope}'],
    ]);
    expect(substitute('{x}{x} {y}', { x: true })).toBe('truetrue {y}');
  });

  it('names tasks from an id template when it has placeholders', () => {
    const p = project([{ id: 'n{n}-s{seed}', run: 'solve {n} {seed}', matrix: { n: [8, 9], seed: ['a'] } }]);
    expect(p.tasks.map((t) => t.id)).toEqual(['n8-sa', 'n9-sa']);
  });

  it('drops what exclude matches, and include extends matching combinations or adds its own', () => {
    const m = { os: ['linux', 'mac'], v: [1, 2], exclude: [{ os: 'mac', v: 1 }], include: [{ os: 'linux', extra: 'x' }, { os: 'win', v: 3 }, { os: 'linux', v: 2 }] };
    expect(combinations(m)).toEqual([
      { os: 'linux', v: 1, extra: 'x' },
      { os: 'linux', v: 2, extra: 'x' },
      { os: 'mac', v: 2 },
      { os: 'win', v: 3 },
    ]);
    // The extra key shows in the id after the matrix's own keys.
    expect(matrixId('t', { os: 'linux', v: 1, extra: 'x' }, ['os', 'v'])).toBe('t_os-linux_v-1_extra-x');
    // An include that adds a key matches only combinations with all its own values; one that conflicts with a
    // value already there adds a combination instead of overwriting.
    expect(combinations({ a: [1, 2], b: [3, 4], include: [{ a: 2, b: 4, note: 'x' }] })).toEqual([{ a: 1, b: 3 }, { a: 1, b: 4 }, { a: 2, b: 3 }, { a: 2, b: 4, note: 'x' }]);
    expect(combinations({ a: [1], include: [{ a: 1, note: 'x' }, { a: 1, note: 'y' }] })).toEqual([{ a: 1, note: 'x' }, { a: 1, note: 'y' }]);
    expect(combinations({ a: [1, 2], include: [{ a: 2 }, { a: 3, b: 1 }] })).toEqual([{ a: 1 }, { a: 2 }, { a: 3, b: 1 }]);
    expect(matrixId('t', { b: 2, a: 1 }, ['a', 'b'])).toBe('t_a-1_b-2');
    expect(matrixId('t', { a: 'x y..z' }, ['a'])).toBe('t_a-x_y.z');
    // An include on its own is a matrix too.
    expect(combinations({ include: [{ a: 1 }, { a: 2 }] })).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it('makes values safe in ids, and refuses an id a value cannot make', () => {
    expect(project([{ id: 't', run: 'echo {p}', matrix: { p: ['a b/c', '..x'] } }]).tasks.map((t) => t.id)).toEqual(['t_p-a_b_c', 't_p-.x']);
    const long = 'v'.repeat(70);
    expect(problems(() => project([{ id: 't', run: 'echo {p}', matrix: { p: [long] } }]))).toEqual([
      { path: '$.tasks[0].id', message: expect.stringContaining(`gives the id "t_p-${long}", which is not 1 to 64 characters`) },
    ]);
  });

  it('refuses duplicates a matrix makes, a matrix past the task limit before building it, and malformed matrices', () => {
    expect(problems(() => project([{ id: 't_p-1', run: 'true' }, { id: 't', run: 'echo {p}', matrix: { p: [1] } }]))).toEqual([
      { path: '$.tasks[1].id', message: 'duplicate task id "t_p-1" (first used at $.tasks[0].id)' },
    ]);
    const big = Array.from({ length: 1000 }, (_, i) => i);
    expect(problems(() => project([{ id: 't', run: 'echo {a} {b}', matrix: { a: big, b: big } }]))).toEqual([
      { path: '$.tasks', message: `expands to 1000000 tasks with its matrices; a project may have at most ${PROJECT_LIMITS.tasks}` },
    ]);
    expect(problems(() => project([{ id: 't', run: 'x', matrix: { a: [] } }]))[0]).toEqual({ path: '$.tasks[0].matrix.a', message: 'a matrix key needs at least one value' });
    expect(problems(() => project([{ id: 't', run: 'x', matrix: { a: [1], exclude: [{ b: 1 }] } }]))[0]).toEqual({ path: '$.tasks[0].matrix.exclude[0].b', message: '"b" is not a key of this matrix (a)' });
    expect(problems(() => project([{ id: 't', run: 'x', matrix: { 'bad-key': [1] } }]))).toEqual([{ path: '$.tasks[0].matrix["bad-key"]', message: 'a matrix key is a name: letters, digits and _, not starting with a digit' }]);
    expect(problems(() => project([{ id: 't', run: 'x', matrix: { a: [1], b: [2], exclude: [{ c: 1 }] } }]))).toEqual([{ path: '$.tasks[0].matrix.exclude[0].c', message: '"c" is not a key of this matrix (a, b)' }]);
    expect(problems(() => project([{ id: 't', run: 'x', matrix: { include: [{ a: 1 }], exclude: [{ c: 1 }] } }]))).toEqual([{ path: '$.tasks[0].matrix.exclude[0].c', message: '"c" is not a key of this matrix (none)' }]);
    // The include entries count too, before any is made.
    const many = Array.from({ length: 100 }, (_, i) => i);
    expect(problems(() => project([{ id: 't', run: 'echo {a} {b}', matrix: { a: many, b: many, include: Array.from({ length: 5 }, (_, i) => ({ a: -i, b: -i })) } }]))).toEqual([
      { path: '$.tasks', message: `expands to 10005 tasks with its matrices; a project may have at most ${PROJECT_LIMITS.tasks}` },
    ]);
    expect(problems(() => project([{ id: 't', run: 'x', matrix: {} }]))[0]!.message).toBe('a matrix needs at least one key with a list of values, or an include');
    expect(problems(() => project([{ id: 't', run: 'x', matrix: { a: [1], exclude: [{ a: 1 }] } }]))).toEqual([
      { path: '$.tasks', message: 'a project needs at least one task (its matrices exclude every combination)' },
    ]);
    expect(problems(() => project([{ id: 't-{a}', run: 'x' }]))).toEqual([{ path: '$.tasks[0].id', message: '{placeholders} in an id need a "matrix"' }]);
  });
});
