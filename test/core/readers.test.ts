/**
 * Reading tracking and done back, in both layouts, from a plain map of
 * files (a TreeSource is all a reader needs); run ids, masking's edges,
 * and observers combined.
 */
import { describe, expect, it, vi } from 'vitest';
import { attemptKey, decode, effectiveLimits, todoFor } from '../../src/core/channels.js';
import { firstRunOf, isValidId, runIdFor, shortSha } from '../../src/core/ids.js';
import { runDirOf, runPaths } from '../../src/core/layout.js';
import { MASK, MaskedStream, SecretMasker } from '../../src/core/masking.js';
import { combineObservers, type RunObserver } from '../../src/core/ports.js';
import { listRunIds, locateRun, readAll, readResultJson, readResultText, readRunRecord, readRunView, readStdout, repoTree, unfinishedRuns, type TreeSource } from '../../src/core/run-reader.js';
import type { TaskRecord } from '../../src/core/task.js';

/** A tree at one commit: files by path; folders listed from them. */
function tree(files: Record<string, string>): TreeSource & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    async readFile(commit, path) {
      expect(commit).toBe('c1');
      reads.push(path);
      return files[path];
    },
    async listDir(commit, path) {
      expect(commit).toBe('c1');
      const names = new Set<string>();
      for (const p of Object.keys(files)) if (p.startsWith(`${path}/`)) names.add(p.slice(path.length + 1).split('/')[0]!);
      return [...names].sort();
    },
  };
}

const run1 = { id: 'old-1234567', project: 'old', file: 'projects/old.json', state: 'running', todoCommit: 't', tasks: ['a', 'b', 'c'], createdAt: 'x' };
const task = (id: string, state: string, extra: object = {}) => ({ run: 'r', id, state, attempts: 1, maxAttempts: 1, ...extra });

describe('run readers', () => {
  it('read a layout-1 run with its tasks in the run’s order, skipping a task file not written yet', async () => {
    const src = tree({
      'projects/old-1234567/run.json': JSON.stringify(run1),
      'projects/old-1234567/tasks/a.json': JSON.stringify(task('a', 'succeeded')),
      'projects/old-1234567/tasks/c.json': JSON.stringify(task('c', 'failed')),
    });
    const view = (await readRunView(src, 'c1', 'old-1234567'))!;
    expect(view.run.layout).toBe(1);
    expect(view.tasks.map((t) => t.id)).toEqual(['a', 'c']);
    expect(view.progress).toEqual({ done: 2, failed: 1, total: 2 });
    expect(await readRunView(src, 'c1', 'nope-1234567')).toBeUndefined();
  });
  it('read a layout-2 run: its task list written once, each task’s state, and when it was published', async () => {
    const id = 'new-1234567';
    const paths = runPaths({ id, layout: 2, taskFanout: 1 });
    const src = tree({
      [paths.runFile]: JSON.stringify({ id, project: 'new', file: 'projects/new.json', state: 'queued', todoCommit: 't', createdAt: 'x', taskFanout: 1 }),
      [paths.taskList!]: ['a', 'b'].map((t) => JSON.stringify({ id: t, argv: ['echo', t], timeoutMs: 1000, maxAttempts: 2 })).join('\n') + '\n',
      [paths.publishedFile!]: JSON.stringify({ at: '2026-01-01T00:00:00.000Z' }),
      [paths.taskFile('b')]: JSON.stringify({ id: 'b', state: 'queued', attempts: 0 }),
    });
    const view = (await readRunView(src, 'c1', id))!;
    expect(view.run).toMatchObject({ layout: 2, tasks: ['a', 'b'], publishedAt: '2026-01-01T00:00:00.000Z' });
    expect(view.tasks).toEqual([{ id: 'b', argv: ['echo', 'b'], timeoutMs: 1000, maxAttempts: 2, run: id, state: 'queued', attempts: 0 }]);
    expect(view.progress).toEqual({ done: 0, failed: 0, total: 1 });
    // Without the list (a run being written), no tasks; without published.json, no publishedAt.
    const bare = tree({ [paths.runFile]: JSON.stringify({ id, state: 'queued', tasks: undefined }) });
    const none = (await readRunView(bare, 'c1', id))!;
    expect(none.tasks).toEqual([]);
    expect(none.run.tasks).toEqual([]);
    expect(none.run.publishedAt).toBeUndefined();
  });
  it('locate a run in layout 2 first, then layout 1, giving a record with a task list', async () => {
    const id = 'both-1234567';
    const src = tree({ [`${runDirOf(id)}/run.json`]: JSON.stringify({ id, state: 'queued' }), [`projects/${id}/run.json`]: JSON.stringify({ id, state: 'failed', tasks: ['x'] }) });
    const located = (await locateRun(src, 'c1', id))!;
    expect(located.run).toEqual({ id, state: 'queued', layout: 2, tasks: [] });
    expect(located.paths.layout).toBe(2);
    expect((await readRunRecord(tree({ [`projects/${id}/run.json`]: JSON.stringify({ id, state: 'failed', tasks: ['x'] }) }), 'c1', id))).toEqual({ id, state: 'failed', tasks: ['x'], layout: 1 });
    expect(await readRunRecord(tree({}), 'c1', id)).toBeUndefined();
  });
  it('list every run id of both layouts, and the unfinished ones', async () => {
    const ids = ['a-1111111', 'b-2222222', 'c-3333333', 'd-4444444'];
    const src = tree({
      'projects/a-1111111/run.json': JSON.stringify({ id: ids[0], state: 'running' }),
      'projects/b-2222222/run.json': JSON.stringify({ id: ids[1], state: 'succeeded', doneCommit: 'd' }),
      [`${runDirOf(ids[2]!)}/run.json`]: JSON.stringify({ id: ids[2], state: 'rejected' }),
      [`${runDirOf(ids[3]!)}/run.json`]: JSON.stringify({ id: ids[3], state: 'queued' }),
    });
    expect((await listRunIds(src, 'c1')).sort()).toEqual(ids);
    expect((await unfinishedRuns(src, 'c1')).map((r) => r.id).sort()).toEqual(['a-1111111', 'd-4444444']);
    expect(await listRunIds(tree({}), 'c1')).toEqual([]);
  });
  it('read a task’s stdout from its record, its own file, or its log', async () => {
    const p1 = runPaths({ id: 'o-1234567' });
    const p2 = runPaths({ id: 'n-1234567', layout: 2 });
    const src = tree({ 'f.stdout': 'from file', [p2.logFile('t')]: 'from log' });
    expect(await readStdout(src, 'c1', p1, task('t', 'succeeded', { stdout: 'inline' }) as TaskRecord)).toBe('inline');
    expect(await readStdout(src, 'c1', p1, task('t', 'succeeded') as TaskRecord)).toBe('');
    expect(await readStdout(src, 'c1', p1, task('t', 'succeeded', { stdout: 'inline', stdoutFile: 'f.stdout' }) as TaskRecord)).toBe('from file');
    expect(await readStdout(src, 'c1', p2, task('t', 'succeeded') as TaskRecord)).toBe('from log');
    expect(await readStdout(src, 'c1', p2, task('t', 'succeeded', { stdoutFile: 'f.stdout' }) as TaskRecord)).toBe('from file');
    expect(await readStdout(src, 'c1', p2, task('u', 'succeeded') as TaskRecord)).toBe('');
  });
  it('read a result in either layout', async () => {
    const src = tree({ [runPaths({ id: 'n-1', layout: 2 }).resultText]: '2\n', [runPaths({ id: 'o-1' }).resultText]: '1\n', [runPaths({ id: 'n-1', layout: 2 }).resultJson]: '{"v":2}', [runPaths({ id: 'o-1' }).resultJson]: '{"v":1}' });
    expect(await readResultText(src, 'c1', 'n-1')).toBe('2\n');
    expect(await readResultText(src, 'c1', 'o-1')).toBe('1\n');
    expect(await readResultText(src, 'c1', 'x-1')).toBeUndefined();
    expect(await readResultJson(src, 'c1', 'n-1')).toEqual({ v: 2 });
    expect(await readResultJson(src, 'c1', 'o-1')).toEqual({ v: 1 });
    expect(await readResultJson(src, 'c1', 'x-1')).toBeUndefined();
  });
  it('read many files in order, 1024 at a time', async () => {
    let inFlight = 0;
    let most = 0;
    const items = Array.from({ length: 2500 }, (_, i) => i);
    const out = await readAll(items, async (i) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      return i % 7 === 0 ? undefined : String(i);
    });
    expect(out).toHaveLength(2500);
    expect(out[1]).toBe('1');
    expect(out[7]).toBeUndefined();
    expect(out[2498]).toBe('2498');
    expect(out[2499]).toBeUndefined();
    expect(most).toBe(1024);
    expect(await readAll([], async () => 'x')).toEqual([]);
  });
  it('read one repository of a store', async () => {
    const store = { readFile: vi.fn(async () => 'text'), listDir: vi.fn(async () => ['a']) };
    const src = repoTree(store, 'tache_suivi');
    expect(await src.readFile('c', 'p')).toBe('text');
    expect(await src.listDir('c', 'd')).toEqual(['a']);
    expect(store.readFile).toHaveBeenCalledWith('tache_suivi', 'c', 'p');
    expect(store.listDir).toHaveBeenCalledWith('tache_suivi', 'c', 'd');
  });
});

describe('run ids from file names', () => {
  const c = '0'.repeat(40);
  it('keep a slug of the file name: runs of unsafe characters become one dash, dots and dashes trimmed at both ends', () => {
    expect(runIdFor('projects/My Project!!.json', c)).toMatch(/^My-Project-[0-9a-f]{7}$/);
    expect(runIdFor('projects/a  b.json', c)).toMatch(/^a-b-[0-9a-f]{7}$/);
    expect(runIdFor('projects/--.x.--.json', c)).toMatch(/^x-[0-9a-f]{7}$/);
    expect(runIdFor('projects/..a..b...json', c)).toMatch(/^a..b-[0-9a-f]{7}$/);
    expect(runIdFor('projects/q.JSON', c)).toMatch(/^q-[0-9a-f]{7}$/);
    expect(runIdFor('projects/q.json.bak', c)).toMatch(/^q.json.bak-[0-9a-f]{7}$/);
    expect(runIdFor('projects/!!!.json', c)).toMatch(/^project-[0-9a-f]{7}$/);
    expect(runIdFor(`projects/${'x'.repeat(60)}.json`, c)).toMatch(new RegExp(`^${'x'.repeat(48)}-[0-9a-f]{7}$`));
  });
  it('are valid only without dot-dot anywhere', () => {
    expect(isValidId('.')).toBe(false);
    expect(isValidId('..')).toBe(false);
    expect(isValidId('a..')).toBe(false);
    expect(isValidId('..a')).toBe(false);
    expect(isValidId('a.b')).toBe(true);
    expect(isValidId('')).toBe(false);
    expect(firstRunOf('q-1234567')).toBe('q-1234567');
    expect(firstRunOf('q-1234567.rx')).toBe('q-1234567.rx');
    expect(shortSha('0123456789abcdef')).toBe('0123456');
  });
});

describe('masking edges', () => {
  it('keeps only strings of 8 characters or more, each once, longest first', () => {
    const m = new SecretMasker([undefined, 'short', '12345678', 'abcdefghij', '12345678', 'abcdefghijkl']);
    expect(m.secrets).toEqual(['abcdefghijkl', 'abcdefghij', '12345678']);
    expect(m.mask('x abcdefghijkl y abcdefghij 12345678 1234567')).toBe(`x ${MASK} y ${MASK} ${MASK} 1234567`);
    expect(new SecretMasker([]).empty).toBe(true);
    expect(new SecretMasker(['short']).empty).toBe(true);
    expect(m.empty).toBe(false);
  });
  it('masks bytes, returning the same bytes when there is nothing to mask', () => {
    const m = new SecretMasker(['s3cr3t-token']);
    const clean = Buffer.from('nothing here é');
    expect(m.maskBytes(clean)).toBe(clean);
    expect(Buffer.from(m.maskBytes(Buffer.from('a s3cr3t-token é'))).toString('utf8')).toBe(`a ${MASK} é`);
  });
  it('streams pieces unchanged when there is no secret, and holds back only what could start one', () => {
    const none = new MaskedStream(new SecretMasker([]));
    expect(none.push('abc')).toBe('abc');
    expect(none.end()).toBe('');
    const s = new MaskedStream(new SecretMasker(['secret-12', 'secret-1234']));
    expect(s.push('one secr')).toBe('one ');
    expect(s.push('et-1')).toBe('');
    expect(s.push('234 two')).toBe(`${MASK} two`);
    expect(s.push(' secret-12')).toBe(' ');
    expect(s.push('x')).toBe(`${MASK}x`);
    expect(s.push('secret-12secret-1234')).toBe(`${MASK}${MASK}`);
    expect(s.push('s')).toBe('');
    expect(s.end()).toBe('s');
    expect(s.end()).toBe('');
    const t = new MaskedStream(new SecretMasker(['abcdefgh']));
    expect(t.push('xxabcdefgh')).toBe(`xx${MASK}`);
    expect(t.push('abcdefg')).toBe('');
    expect(t.end()).toBe('abcdefg');
    expect(t.push('zz')).toBe('zz');
  });
});

describe('observers combined', () => {
  it('tell every observer given, skipping undefined ones and methods an observer lacks', () => {
    const calls: string[] = [];
    const full: RunObserver = {
      runQueued: (r) => calls.push(`queued ${r.id}`),
      runRejected: (r) => calls.push(`rejected ${r.id}`),
      runProgress: (r, p) => calls.push(`progress ${r.id} ${p.done}`),
      runFinished: (r, p) => calls.push(`finished ${r.id} ${r.state} ${p.total}`),
      taskChanged: (c) => calls.push(`task ${c.run} ${c.commit}`),
      committed: (repo, ms) => calls.push(`committed ${repo} ${ms}`),
    };
    const other: RunObserver = { runQueued: (r) => calls.push(`other ${r.id}`) };
    const all = combineObservers(full, undefined, other, {});
    const p = { done: 1, failed: 0, total: 2 };
    all.runQueued!({ id: 'r', todoCommit: 't', taskCount: 2 });
    all.runRejected!({ id: 'r', todoCommit: 't' });
    all.runProgress!({ id: 'r', todoCommit: 't' }, p);
    all.runFinished!({ id: 'r', todoCommit: 't', state: 'succeeded' }, p);
    all.taskChanged!({ run: 'r', task: {} as TaskRecord, commit: 'c', subject: 's' });
    all.committed!('tache_suivi', 3);
    expect(calls).toEqual(['queued r', 'other r', 'rejected r', 'progress r 1', 'finished r succeeded 2', 'task r c', 'committed tache_suivi 3']);
  });
});

describe('channels', () => {
  it('name the channel, the path and the rule of a message that does not match, and of one that is not JSON', async () => {
    expect(() => decode('done', Buffer.from('{oops'))).toThrow('DONE: message is not JSON (5 bytes)');
    expect(() => decode('todo', Buffer.from('{"v":1}'))).toThrow(/^TODO: message does not match its schema: run: .+; task: /);
    expect(() => decode('control', Buffer.from('[]'))).toThrow(/^CONTROL: message does not match its schema: \$: /);
    const run = { id: 'r', todoCommit: 't', configCommit: 'c' };
    const task = { id: 'a', attempts: 2, argv: ['true'], timeoutMs: 5 };
    const ceiling = { memoryBytes: 100, nanoCpus: 10, pids: 8 };
    expect(todoFor(run, task, ceiling, 'u')).toEqual({ v: 1, run: 'r', task: 'a', attempt: 3, worker: 'default', argv: ['true'], timeoutMs: 5, limits: ceiling, config: { url: 'u', commit: 'c' }, todoCommit: 't' });
    expect(todoFor({ ...run, worker: 'gpu', limits: { pids: 4 } }, task, ceiling, 'u')).toMatchObject({ worker: 'gpu', limits: { memoryBytes: 100, nanoCpus: 10, pids: 4 } });
    expect(effectiveLimits(ceiling, { memoryBytes: 1000, nanoCpus: 5 })).toEqual({ memoryBytes: 100, nanoCpus: 5, pids: 8 });
    expect(attemptKey({ run: 'r', task: 't', attempt: 2 })).toBe('r/t/2');
  });
});

describe('masking, more edges', () => {
  it('masks bytes holding only one of several secrets', () => {
    const m = new SecretMasker(['first-secret', 'second-secret']);
    expect(Buffer.from(m.maskBytes(Buffer.from('x second-secret y'))).toString()).toBe(`x ${MASK} y`);
  });
  it('shows a piece that ends with a whole secret at once, masked, and text that starts no secret whole', () => {
    const s = new MaskedStream(new SecretMasker(['abcdefgh']));
    expect(s.push('xx abcdefgh')).toBe(`xx ${MASK}`);
    expect(s.push('hello world')).toBe('hello world');
    expect(s.push('abc')).toBe('');
    expect(s.push('defghZ')).toBe(`${MASK}Z`);
  });
});

describe('masking with secrets of different lengths', () => {
  it('shows a whole short secret at the end of a piece at once, masked, while a longer secret could still be coming', () => {
    const s = new MaskedStream(new SecretMasker(['abcdefgh', 'zzzzzzzzzzzz']));
    expect(s.push('xx abcdefgh')).toBe(`xx ${MASK}`);
    expect(s.push(' zzzz')).toBe(' ');
    expect(s.push('zzzzzzzz!')).toBe(`${MASK}!`);
  });
});
