// Counts N-Queens solutions: all of those with the first row's queen in column COL,
// or, for a share of a split board, those of each listed part.
// Usage: node nqueens.js N COL
//        node nqueens.js N parts=C1[.C2][*W],...
// A part C1 fixes the first row's queen in column C1; C1.C2 also fixes the second
// row's in C2. *W counts each solution W times: a part in the left half of the
// board stands for its mirror image as well (W = 2).
// Bitmask backtracking: each set bit in `cols`, `d1`, `d2` is a square under attack.
'use strict';
const n = Number(process.argv[2]);
const arg = process.argv[3] ?? '';
const usage = () => {
  console.error('usage: node nqueens.js N COL  or  node nqueens.js N parts=C1[.C2][*W],...  (1 <= N <= 30, 0 <= C < N)');
  process.exit(2);
};
if (!Number.isInteger(n) || n < 1 || n > 30) usage();
const full = (1 << n) - 1;
function solve(cols, d1, d2) {
  if (cols === full) return 1;
  let count = 0;
  let free = full & ~(cols | d1 | d2);
  while (free) {
    const bit = free & -free;
    free ^= bit;
    count += solve(cols | bit, ((d1 | bit) << 1) & full, (d2 | bit) >> 1);
  }
  return count;
}
/** Solutions with queens fixed in the first rows at these columns (0 if they attack each other). */
function countFrom(columns) {
  let cols = 0;
  let d1 = 0;
  let d2 = 0;
  for (const c of columns) {
    const bit = 1 << c;
    if ((cols | d1 | d2) & bit) return 0;
    cols |= bit;
    d1 = ((d1 | bit) << 1) & full;
    d2 = (d2 | bit) >> 1;
  }
  return solve(cols, d1, d2);
}
const column = (s) => {
  const c = Number(s);
  if (!/^\d+$/.test(s) || c >= n) usage();
  return c;
};
if (arg.startsWith('parts=')) {
  let total = 0;
  for (const part of arg.slice('parts='.length).split(',')) {
    const m = /^(\d+)(?:\.(\d+))?(?:\*(\d+))?$/.exec(part);
    if (!m) usage();
    const columns = [column(m[1])];
    if (m[2] !== undefined) columns.push(column(m[2]));
    total += countFrom(columns) * Number(m[3] ?? 1);
  }
  console.log(total);
} else {
  console.log(countFrom([column(arg)]));
}
