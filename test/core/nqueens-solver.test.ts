/** The worker's solver (repos-template/config/workers/default/nqueens.js) against the generator's split, with node. */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NQUEENS_KNOWN, nqueensTasks } from '../../src/core/nqueens.js';

const SOLVER = path.resolve('repos-template/config/workers/default/nqueens.js');
const solve = (args: string[]) => execFileSync(process.execPath, [SOLVER, ...args], { encoding: 'utf8' }).trim();

describe('the N-Queens solver', () => {
  it.each([1, 2, 3, 4, 5, 6, 8, 9, 10, 11])('n = %i: the split tasks sum to the known count, in one task or several', (n) => {
    for (const k of [1, 3]) {
      const sum = nqueensTasks(n, k).reduce((s, t) => s + Number(solve(t.argv.slice(2))), 0);
      expect(sum, `n = ${n}, ${k} task(s)`).toBe(NQUEENS_KNOWN[n]);
    }
  });

  it('still counts one first-row column, as older configs ask it to', () => {
    expect(solve(['8', '0'])).toBe('4');
  });

  it('refuses what it cannot count, with its usage', () => {
    for (const bad of [['8', 'x'], ['8', 'parts=9'], ['8', 'parts=1.x'], ['0', '0']]) {
      expect(() => execFileSync(process.execPath, [SOLVER, ...bad], { stdio: 'pipe' }), bad.join(' ')).toThrow(/usage: node nqueens.js N COL/);
    }
  });
});
