import { describe, expect, it } from 'vitest';
import { cacheKey, specKey, type CacheKeyParts } from '../../src/core/cache-key.js';
import { ResultCache, CANDIDATES_PER_TASK } from '../../src/core/result-cache.js';

const parts: CacheKeyParts = {
  executor: 'docker',
  worker: 'default',
  tree: 'a'.repeat(40),
  base: 'sha256:' + 'b'.repeat(64),
  argv: ['sh', '-c', 'echo hi'],
  env: { GITJOBS_RUN: 'r-1', GITJOBS_TASK: 't', GITJOBS_ATTEMPT: '1' },
  limits: { memoryBytes: 1 << 29, nanoCpus: 1e9, pids: 256 },
  timeoutMs: 60_000,
  inputs: [],
};

describe('cacheKey', () => {
  it('is 64 hex digits, the same for the same parts', () => {
    expect(cacheKey(parts)).toMatch(/^[0-9a-f]{64}$/);
    expect(cacheKey({ ...parts, argv: [...parts.argv] })).toBe(cacheKey(parts));
  });

  it('changes with everything that can change the outcome', () => {
    const changed: Partial<CacheKeyParts>[] = [
      { executor: 'process@h1' },
      { worker: 'other' },
      { tree: 'c'.repeat(40) },
      { base: 'sha256:' + 'd'.repeat(64) },
      { argv: ['sh', '-c', 'echo hi '] },
      { argv: ['sh', '-c echo', 'hi'] },
      { env: { ...parts.env, LANG: 'C' } },
      { limits: { ...parts.limits, memoryBytes: 1 << 28 } },
      { limits: { ...parts.limits, nanoCpus: 5e8 } },
      { limits: { ...parts.limits, pids: 64 } },
      { timeoutMs: 59_000 },
      { inputs: ['e'.repeat(40)] },
      { inputs: [`a/stdout:${'e'.repeat(40)}`, `a/files/x:${'f'.repeat(40)}`] },
      { outBytes: 1024 },
    ];
    const keys = new Set([cacheKey(parts), ...changed.map((c) => cacheKey({ ...parts, ...c }))]);
    expect(keys.size).toBe(changed.length + 1);
  });

  it('leaves out what names the attempt, and the order of variables and inputs', () => {
    expect(cacheKey({ ...parts, env: { GITJOBS_RUN: 'r-2', GITJOBS_TASK: 'u', GITJOBS_ATTEMPT: '3' } })).toBe(cacheKey(parts));
    expect(cacheKey({ ...parts, env: { A: '1', B: '2' } })).toBe(cacheKey({ ...parts, env: { B: '2', A: '1' } }));
    const four = { D: '4', B: '2', A: '1', C: '3' };
    expect(cacheKey({ ...parts, env: four })).toBe(cacheKey({ ...parts, env: { C: '3', A: '1', D: '4', B: '2' } }));
    expect(cacheKey({ ...parts, env: four })).toBe(cacheKey({ ...parts, env: { A: '1', B: '2', C: '3', D: '4' } }));
    expect(cacheKey({ ...parts, env: four })).not.toBe(cacheKey({ ...parts, env: { ...four, D: '5' } }));
    expect(cacheKey({ ...parts, inputs: ['1', '2'] })).toBe(cacheKey({ ...parts, inputs: ['2', '1'] }));
  });

  it('files results under worker, command and timeout', () => {
    expect(specKey('default', ['a'], 1)).toBe(specKey('default', ['a'], 1));
    expect(new Set([specKey('default', ['a'], 1), specKey('w', ['a'], 1), specKey('default', ['b'], 1), specKey('default', ['a'], 2)]).size).toBe(4);
  });
});

describe('ResultCache', () => {
  it('reads tracking again after a read that failed', async () => {
    let fail = true;
    const cache = new ResultCache({
      source: { readFile: async () => undefined, listDir: async () => [] },
      head: async () => {
        if (fail) throw new Error('tracking unreadable');
        return 'a'.repeat(40);
      },
    });
    await expect(cache.ready()).rejects.toThrow('tracking unreadable');
    fail = false;
    await expect(cache.ready()).resolves.toBeUndefined();
  });

  const entry = (n: number, key = `k${n}`) => ({ key, run: `r-${n}`, task: 't', commit: String(n).repeat(40) });

  it('gives the newest result first, one per key, and keeps a few per command', () => {
    const cache = new ResultCache();
    const spec = specKey('default', ['sh', '-c', 'x'], 1000);
    cache.add(spec, entry(1));
    cache.add(spec, entry(2));
    cache.add(spec, entry(3, 'k1'));
    expect(cache.candidates('default', ['sh', '-c', 'x'], 1000).map((e) => e.run)).toEqual(['r-3', 'r-2']);
    // The newest result for the key in front replaces it too.
    cache.add(spec, entry(4, 'k1'));
    expect(cache.candidates('default', ['sh', '-c', 'x'], 1000).map((e) => e.run)).toEqual(['r-4', 'r-2']);
    for (let i = 10; i < 30; i++) cache.add(spec, entry(i));
    expect(cache.candidates('default', ['sh', '-c', 'x'], 1000)).toHaveLength(CANDIDATES_PER_TASK);
    expect(cache.size).toBe(CANDIDATES_PER_TASK);
    expect(cache.candidates('default', ['sh', '-c', 'y'], 1000)).toEqual([]);
  });

  it('files a success with its key; a task without a key or not succeeded is not filed; a hit points at its origin', () => {
    const cache = new ResultCache();
    const run = { id: 'r-9', worker: 'default' };
    const base = { run: 'r-9', attempts: 1, maxAttempts: 1, argv: ['x'], timeoutMs: 5, queuedAt: '' };
    cache.addTask(run, { ...base, id: 'a', state: 'succeeded', cacheKey: 'K' }, 'c'.repeat(40));
    cache.addTask(run, { ...base, id: 'b', state: 'failed', cacheKey: 'L' }, 'c'.repeat(40));
    cache.addTask(run, { ...base, id: 'c', state: 'succeeded' }, 'c'.repeat(40));
    cache.addTask(run, { ...base, id: 'd', state: 'succeeded', cacheKey: 'M', cachedFrom: { run: 'r-1', task: 'z', commit: 'f'.repeat(40) } }, 'c'.repeat(40));
    // A run that names no worker ran on the default one.
    cache.addTask({ id: 'r-8' }, { ...base, run: 'r-8', id: 'e', state: 'succeeded', cacheKey: 'N', argv: ['y'] }, 'd'.repeat(40));
    expect(cache.candidates('default', ['y'], 5)).toEqual([{ key: 'N', run: 'r-8', task: 'e', commit: 'd'.repeat(40) }]);
    expect(cache.candidates('default', ['x'], 5)).toEqual([
      { key: 'M', run: 'r-1', task: 'z', commit: 'f'.repeat(40) },
      { key: 'K', run: 'r-9', task: 'a', commit: 'c'.repeat(40) },
    ]);
  });
});
