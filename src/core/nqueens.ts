/**
 * The N-Queens generator. The board's mirror symmetry halves the work: a
 * solution with its first queen in the left half has a mirror image with it
 * in the right half, so only the left half is searched, each solution
 * counted twice (the middle column of an odd board once). From n = 10 the
 * work is split two rows deep, one part per (first-row, second-row) pair of
 * columns, which evens out the parts (the first-row columns alone are
 * uneven). The parts are dealt to `tasks` tasks in a snake order, so each
 * task gets a like share of every column. The solver itself lives in the
 * worker image (`config/workers/default/nqueens.js`) and runs in the
 * container; the core only splits the work and, through the `sum` reducer,
 * puts it back together.
 */
export const NQUEENS_MAX_N = 18;

/** From this n on, parts fix the first two rows, not only the first. */
export const NQUEENS_TWO_ROWS_FROM = 10;

/** Tasks a board is split into unless the project says: one per worker slot of a small cluster. */
export function defaultNqueensTasks(n: number): number {
  return Math.min(8, Math.ceil(n / 2));
}

/** The parts of the board's search: `C1`, or `C1.C2` two rows deep, with `*2` for those that count their mirror image too. */
export function nqueensParts(n: number): string[] {
  const parts: string[] = [];
  const half = Math.floor(n / 2);
  for (let c1 = 0; c1 < Math.ceil(n / 2); c1++) {
    const weight = c1 < half ? '*2' : '';
    if (n < NQUEENS_TWO_ROWS_FROM) parts.push(`${c1}${weight}`);
    else for (let c2 = 0; c2 < n; c2++) if (Math.abs(c2 - c1) > 1) parts.push(`${c1}.${c2}${weight}`);
  }
  return parts;
}

export function nqueensTasks(n: number, tasks = defaultNqueensTasks(n)): { id: string; argv: string[] }[] {
  const parts = nqueensParts(n);
  const k = Math.max(1, Math.min(tasks, parts.length));
  const buckets: string[][] = Array.from({ length: k }, () => []);
  parts.forEach((part, i) => {
    const r = i % (2 * k);
    buckets[r < k ? r : 2 * k - 1 - r]!.push(part);
  });
  return buckets.map((b, i) => ({ id: String(i), argv: ['node', 'nqueens.js', String(n), `parts=${b.join(',')}`] }));
}

/** Known totals (OEIS A000170), for tests and for checking a run's result. */
export const NQUEENS_KNOWN = [1, 1, 0, 0, 2, 10, 4, 40, 92, 352, 724, 2680, 14200, 73712, 365596, 2279184, 14772512] as const;
