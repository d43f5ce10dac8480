import { storeRate, transitionCommits, fastImportRate } from './dist/bench/store-rate.js';
const c = transitionCommits(10000);
for (let i = 0; i < 3; i++) {
  const s = await storeRate(c);
  const f = await fastImportRate(c);
  console.log('store', Math.round(c.transitions.length / s.seconds), '/s  fast-import', Math.round(c.transitions.length / f.seconds), '/s', 'bytes/commit', Math.round(s.bytesPerCommit));
}
