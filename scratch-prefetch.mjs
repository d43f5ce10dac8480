import { processPipeline } from './dist/bench/pipeline.js';
const variants = (process.argv[2] ?? 'default,0').split(',');
const res = Object.fromEntries(variants.map((v) => [v, []]));
for (let r = 0; r < Number(process.argv[3] ?? 6); r++) {
  for (const v of (r % 2 ? [...variants].reverse() : variants)) {
    if (v === 'default') delete process.env.X_ADD; else process.env.X_ADD = v;
    const f = await processPipeline([1000], 8);
    res[v].push(f.seconds[1000]);
  }
  console.log(variants.map((v) => `${v}=${res[v].at(-1).toFixed(2)}`).join(' '));
}
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log('medians', variants.map((v) => `${v}=${med(res[v]).toFixed(2)}`).join(' '));
