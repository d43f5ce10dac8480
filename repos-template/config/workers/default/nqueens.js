// Counts the N-Queens solutions whose queen in the first row stands in column COL.
// Usage: node nqueens.js N COL
// Bitmask backtracking: each set bit in `cols`, `d1`, `d2` is a square under attack.
'use strict';
const n = Number(process.argv[2]);
const col = Number(process.argv[3]);
if (!Number.isInteger(n) || n < 1 || n > 30 || !Number.isInteger(col) || col < 0 || col >= n) {
  console.error('usage: node nqueens.js N COL  (1 <= N <= 30, 0 <= COL < N)');
  process.exit(2);
}
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
const bit = 1 << col;
console.log(solve(bit, (bit << 1) & full, bit >> 1));
