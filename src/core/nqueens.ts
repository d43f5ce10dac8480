/**
 * The N-Queens generator: one task per column of the first row, each counting
 * the solutions that have their first queen there. The solver itself lives in
 * the worker image (`config/workers/default/nqueens.js`) and runs in the
 * container; the core only splits the work and, through the `sum` reducer,
 * puts it back together.
 */
export const NQUEENS_MAX_N = 18;

export function nqueensTasks(n: number): { id: string; argv: string[] }[] {
  return Array.from({ length: n }, (_, col) => ({ id: String(col), argv: ['node', 'nqueens.js', String(n), String(col)] }));
}

/** Known totals (OEIS A000170), for tests and for checking a run's result. */
export const NQUEENS_KNOWN = [1, 1, 0, 0, 2, 10, 4, 40, 92, 352, 724, 2680, 14200, 73712, 365596] as const;
