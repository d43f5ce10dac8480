import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startUp } from './dist/bench/up-process.js';
import { submit, waitForRun } from './dist/client/submit.js';
import { DEFAULT_SETTINGS } from './dist/core/settings.js';
import { nqueensParts, nqueensTasks, NQUEENS_KNOWN } from './dist/core/nqueens.js';
const n = 16;
const full = (1 << n) - 1;
let nodes = 0;
function solve(cols, d1, d2) { nodes++; if (cols === full) return 1; let c = 0; let free = full & ~(cols | d1 | d2); while (free) { const bit = free & -free; free ^= bit; c += solve(cols | bit, ((d1 | bit) << 1) & full, (d2 | bit) >> 1); } return c; }
function cost(p) { const m = /^(\d+)\.(\d+)/.exec(p); const a = 1 << Number(m[1]), b = 1 << Number(m[2]); nodes = 0; solve(a | b, (((a << 1) & full | b) << 1) & full, ((a >> 1) | b) >> 1); return nodes; }
const parts = nqueensParts(n).map((p) => ({ p, c: cost(p) })).sort((x, y) => y.c - x.c);
const total = parts.reduce((s, x) => s + x.c, 0);
const shares = (process.argv[2] ?? '0.4,0.4,0.1,0.1').split(',').map(Number);
const buckets = shares.map((s) => ({ room: s * total, parts: [] }));
for (const x of parts) { const b = buckets.reduce((best, b) => (b.room > best.room ? b : best)); b.parts.push(x.p); b.room -= x.c; }
console.log('buckets', buckets.map((b) => ((total * shares[buckets.indexOf(b)] - b.room) / total).toFixed(3)).join(' '));
const guidedTasks = buckets.map((b, i) => ({ id: `g${i}`, run: ['node', 'nqueens.js', String(n), `parts=${b.parts.join(',')}`] }));
const up = await startUp({ executor: 'docker', workers: 2 });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scratch-'));
let k = 0;
const timed = async (name, project) => {
  const file = path.join(dir, `${name}-${++k}.json`);
  fs.writeFileSync(file, JSON.stringify({ project: `${name}-${k}`, timeout: '10m', ...project }));
  const t = performance.now();
  const sent = await submit({ file, url: up.url, repos: DEFAULT_SETTINGS.repos, branch: DEFAULT_SETTINGS.branch });
  const { view, resultText } = await waitForRun({ url: up.url, run: sent.run, timeoutMs: 600000 });
  if (Number(resultText) !== NQUEENS_KNOWN[n] && name !== 'warm') throw new Error(resultText);
  return (performance.now() - t) / 1000;
};
await timed('warm', { nqueens: { n: 8 } });
const split = () => timed('split', { nqueens: { n } });
const guided = () => timed('guided', { reduce: 'sum', tasks: guidedTasks });
const s = [], g = [];
for (let r = 0; r < 4; r++) { if (r % 2) { g.push(await guided()); s.push(await split()); } else { s.push(await split()); g.push(await guided()); } console.log('split', s.at(-1).toFixed(2), 'guided', g.at(-1).toFixed(2)); }
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log('sum split', s.reduce((a, b) => a + b).toFixed(2), 'guided', g.reduce((a, b) => a + b).toFixed(2));
await up.stop();
