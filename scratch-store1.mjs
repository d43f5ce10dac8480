import { storeRate, transitionCommits } from './dist/bench/store-rate.js';
const c = transitionCommits(10000);
const s = await storeRate(c);
console.log('store', Math.round(c.transitions.length / s.seconds), '/s');
