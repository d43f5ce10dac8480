import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalGitStore } from '../../src/adapters/git/local-store.js';
import { ZERO_SHA } from '../../src/core/events.js';
import { ConflictError } from '../../src/core/errors.js';
import { git, tmpdir } from '../helpers/stack.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

async function store() {
  const root = tmpdir('store');
  dirs.push(root);
  const s = new LocalGitStore(root);
  await s.create('repo');
  return s;
}

describe('LocalGitStore', () => {
  it('writes commits straight to the object database, readable by the git CLI', async () => {
    const s = await store();
    const c1 = await s.commit('repo', { changes: [{ path: 'projects/r/run.json', content: '{"a":1}\n' }, { path: 'README.md', content: '# hi\n' }], message: 'first\n' });
    const c2 = await s.commit('repo', { changes: [{ path: 'projects/r/tasks/x.json', content: 'x\n' }], message: 'second\n\nTodo-Commit: abc\n' });
    const gitdir = s.gitdir('repo');
    expect(git(gitdir, 'rev-parse', 'main').trim()).toBe(c2);
    expect(git(gitdir, 'log', '--format=%s', 'main').trim().split('\n')).toEqual(['second', 'first']);
    expect(git(gitdir, 'show', `${c1}:projects/r/run.json`)).toBe('{"a":1}\n');
    expect(git(gitdir, 'ls-tree', '-r', '--name-only', 'main').trim().split('\n')).toEqual(['README.md', 'projects/r/run.json', 'projects/r/tasks/x.json']);
    expect(git(gitdir, 'log', '-1', '--format=%(trailers:key=Todo-Commit,valueonly)', 'main').trim()).toBe('abc');
    git(gitdir, 'fsck', '--strict');
  });

  it('deletes files and empty folders', async () => {
    const s = await store();
    await s.commit('repo', { changes: [{ path: 'a/b/c.txt', content: 'c' }, { path: 'keep.txt', content: 'k' }], message: 'add\n' });
    await s.commit('repo', { changes: [{ path: 'a/b/c.txt', content: null }], message: 'remove\n' });
    expect(git(s.gitdir('repo'), 'ls-tree', '-r', '--name-only', 'main').trim()).toBe('keep.txt');
    git(s.gitdir('repo'), 'fsck', '--strict');
  });

  it('builds on commits that someone else added to the branch, never forking it', async () => {
    const s = await store();
    await s.commit('repo', { changes: [{ path: 'ours/1.txt', content: '1' }], message: 'ours 1\n' });
    // Another writer (a second store instance) moves the branch.
    const other = new LocalGitStore(s.root);
    await other.commit('repo', { changes: [{ path: 'theirs.txt', content: 't' }], message: 'theirs\n' });
    await s.commit('repo', { changes: [{ path: 'ours/2.txt', content: '2' }], message: 'ours 2\n' });
    const gitdir = s.gitdir('repo');
    expect(git(gitdir, 'log', '--format=%s', 'main').trim().split('\n')).toEqual(['ours 2', 'theirs', 'ours 1']);
    expect(git(gitdir, 'ls-tree', '-r', '--name-only', 'main').trim().split('\n')).toEqual(['ours/1.txt', 'ours/2.txt', 'theirs.txt']);
  });

  it('serialises concurrent commits into one linear history', async () => {
    const s = await store();
    await Promise.all(Array.from({ length: 50 }, (_, i) => s.commit('repo', { changes: [{ path: `t/${i}.json`, content: String(i) }], message: `c${i}\n` })));
    const gitdir = s.gitdir('repo');
    expect(Number(git(gitdir, 'rev-list', '--count', 'main').trim())).toBe(50);
    expect(git(gitdir, 'ls-tree', '--name-only', 'main', 't/').trim().split('\n')).toHaveLength(50);
    git(gitdir, 'fsck', '--strict');
  });

  it('never loses a commit when two writers (as two processes would) commit to one branch at once', async () => {
    const s = await store();
    const other = new LocalGitStore(s.root);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? s : other).commit('repo', { changes: [{ path: `w${i % 2}/${i}.json`, content: String(i) }], message: `c${i}\n` })),
    );
    const gitdir = s.gitdir('repo');
    expect(Number(git(gitdir, 'rev-list', '--count', 'main').trim())).toBe(40);
    expect(git(gitdir, 'ls-tree', '-r', '--name-only', 'main').trim().split('\n')).toHaveLength(40);
    expect(git(gitdir, 'rev-list', '--merges', 'main').trim()).toBe('');
    expect(fs.existsSync(`${gitdir}/refs/heads/main.lock`)).toBe(false);
    git(gitdir, 'fsck', '--strict');
  });

  it('refuses a commit on a head that has moved, when asked to build on that head', async () => {
    const s = await store();
    const first = await s.commit('repo', { changes: [{ path: 'a.txt', content: 'a' }], message: 'a\n' });
    await new LocalGitStore(s.root).commit('repo', { changes: [{ path: 'b.txt', content: 'b' }], message: 'b\n' });
    await expect(s.commit('repo', { changes: [{ path: 'a.txt', content: 'stale' }], message: 'stale\n', expectedHead: first })).rejects.toBeInstanceOf(ConflictError);
    expect(git(s.gitdir('repo'), 'log', '--format=%s', 'main').trim().split('\n')).toEqual(['b', 'a']);
  });

  it('lists the files two commits differ in', async () => {
    const s = await store();
    const a = await s.commit('repo', { changes: [{ path: 'projects/a.json', content: '1' }, { path: 'projects/b.json', content: '1' }, { path: 'x/deep/y.txt', content: 'y' }], message: 'a\n' });
    const b = await s.commit('repo', { changes: [{ path: 'projects/a.json', content: '2' }, { path: 'projects/b.json', content: null }, { path: 'projects/sub/c.json', content: 'c' }], message: 'b\n' });
    expect(await s.changedFiles('repo', a, b)).toEqual([
      { path: 'projects/a.json', status: 'modified' },
      { path: 'projects/b.json', status: 'deleted' },
      { path: 'projects/sub/c.json', status: 'added' },
    ]);
    expect((await s.changedFiles('repo', ZERO_SHA, a)).map((f) => f.path)).toEqual(['projects/a.json', 'projects/b.json', 'x/deep/y.txt']);
    expect(await s.readFile('repo', b, 'projects/a.json')).toBe('2');
    expect(await s.readFile('repo', b, 'projects/b.json')).toBeUndefined();
  });
});
