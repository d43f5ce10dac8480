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

/**
 * Solutions a task is given to count when the project does not say how many
 * tasks: about 2 to 4 s of the solver on one core of a small VM. Every task
 * pays for a container start, its namespaces and a fresh node (about 0.2 s
 * of CPU on this kind of machine, measured), so a task this size spends
 * some 5 % of its time on them; smaller ones spend more (at n = 16, 8 tasks
 * on two workers took 6 to 19 % longer than 2 tasks, in benches of two days).
 */
export const NQUEENS_SOLUTIONS_PER_TASK = 3_000_000;

/**
 * Tasks a board is split into unless the project says: enough that each
 * counts about NQUEENS_SOLUTIONS_PER_TASK of the solutions searched (half of
 * them, the other half being their mirror images), at least 2 (two workers
 * share even a small board) and at most 8. A function of n alone: the same
 * project file always makes the same tasks (re-runs, the result cache).
 */
export function defaultNqueensTasks(n: number): number {
  const searched = (NQUEENS_KNOWN[n] ?? 0) / 2;
  return Math.max(2, Math.min(8, Math.floor(searched / NQUEENS_SOLUTIONS_PER_TASK)));
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
export const NQUEENS_KNOWN = [1, 1, 0, 0, 2, 10, 4, 40, 92, 352, 724, 2680, 14200, 73712, 365596, 2279184, 14772512, 95815104, 666090624] as const;
