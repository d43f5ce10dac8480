import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CatFile } from '../../src/adapters/git/cat-file.js';
import { LocalGitStore } from '../../src/adapters/git/local-store.js';
import { ZERO_SHA } from '../../src/core/events.js';
import { ConflictError } from '../../src/core/errors.js';
import { git, rmTree, tmpdir } from '../helpers/stack.js';

const dirs: string[] = [];
const stores: LocalGitStore[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
  dirs.forEach((d) => rmTree(d));
});

async function store() {
  const root = tmpdir('store');
  dirs.push(root);
  const s = new LocalGitStore(root);
  stores.push(s);
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

  it('reads many files at once as readFile reads each one, staged commits included', async () => {
    const s = await store();
    const files = ['runs/a/tasks/x.json', 'runs/a/tasks/y.json', 'runs/a/tasks/0/z.json', 'top.txt'];
    const c1 = await s.commit('repo', { changes: files.map((p, i) => ({ path: p, content: `${i}\n` })), message: 'files\n' });
    // Files, missing files and folders, a folder asked for as a file, and the same paths again.
    const ask = [...files, 'runs/a/tasks/missing.json', 'runs/nowhere/x.json', 'runs/a/tasks', 'runs/a/tasks/0', ...files];
    const one = async (commit: string) => Promise.all(ask.map((p) => s.readFile('repo', commit, p)));
    expect(await s.readFiles('repo', c1, ask)).toEqual(await one(c1));
    expect((await s.readFiles('repo', c1, ask)).slice(0, 4)).toEqual(['0\n', '1\n', '2\n', '3\n']);
    // A commit staged but not yet on disk reads the same way.
    const staged = await s.stage('repo', { changes: [{ path: 'runs/a/tasks/x.json', content: 'new\n' }, { path: 'runs/a/tasks/0/z.json', content: null }], message: 'more\n' });
    expect(await s.readFiles('repo', staged.oid, ask)).toEqual(await one(staged.oid));
    expect((await s.readFiles('repo', staged.oid, ask)).slice(0, 3)).toEqual(['new\n', '1\n', undefined]);
    await staged.durable;
    expect(await s.readFiles('repo', staged.oid, ask)).toEqual(await one(staged.oid));
  });

  it('reads thousands of files in hundreds of folders at once (more than one request to the reader), and a path under a file as missing', async () => {
    const s = await store();
    const hex = (i: number) => i.toString(16).padStart(4, '0');
    const files = Array.from({ length: 4500 }, (_, i) => `runs/b/tasks/${hex(i)[3]}/${hex(i)[2]}/t${i}.json`);
    const c1 = await s.commit('repo', { changes: [...files.map((p, i) => ({ path: p, content: `{"n":${i}}\n` })), { path: 'top.txt', content: 'top\n' }], message: 'many\n' });
    const ask = [...files, 'top.txt/under', 'runs/b/tasks/f/f/none.json', 'runs/b/tasks/x/y/none.json'];
    const read = await s.readFiles('repo', c1, ask);
    expect(read.slice(0, files.length)).toEqual(files.map((_, i) => `{"n":${i}}\n`));
    expect(read.slice(files.length)).toEqual([undefined, undefined, undefined]);
    // The same as readFile, path by path, on a sample.
    const sample = ask.filter((_, i) => i % 97 === 0 || i >= files.length);
    expect(await s.readFiles('repo', c1, sample)).toEqual(await Promise.all(sample.map((p) => s.readFile('repo', c1, p))));
  });

  it('the object reader answers many objects at once in order, missing ones as undefined, between single requests', async () => {
    const s = await store();
    const c1 = await s.commit('repo', { changes: ['a', 'b', 'c'].map((p) => ({ path: p, content: `${p}\n` })), message: 'abc\n' });
    const gitdir = s.gitdir('repo');
    const oid = (p: string) => git(gitdir, 'rev-parse', `${c1}:${p}`).trim();
    const reader = new CatFile(gitdir);
    try {
      const single = reader.contents(oid('a'));
      const many = reader.contentsOf([oid('c'), '0'.repeat(40), oid('a'), `${c1}:b`, oid('c')]);
      const info = reader.info(oid('b'));
      const after = reader.contents(`${c1}:nope`);
      expect((await single)!.data.toString()).toBe('a\n');
      expect((await many).map((o) => o?.data.toString())).toEqual(['c\n', undefined, 'a\n', 'b\n', 'c\n']);
      expect((await many)[3]).toMatchObject({ oid: oid('b'), type: 'blob', size: 2 });
      expect(await info).toEqual({ oid: oid('b'), type: 'blob', size: 2 });
      expect(await after).toBeUndefined();
      expect(await reader.contentsOf([])).toEqual([]);
      await expect(reader.contentsOf([oid('a'), 'a\nb'])).rejects.toThrow('not an object name: "a\\nb"');
    } finally {
      reader.close();
    }
  });

  it('writes trees in git’s order, with git’s modes, as git mktree does', async () => {
    const s = await store();
    const oid = await s.commit('repo', { changes: ['a/x', 'a.b', 'a-c', 'a0', 'b/y/z', 'É.txt', 'Z'].map((p) => ({ path: p, content: p })), message: 'names\n' });
    const gitdir = s.gitdir('repo');
    const tree = git(gitdir, '-c', 'core.quotePath=false', 'cat-file', '-p', `${oid}^{tree}`);
    expect(tree.trim().split('\n').map((l) => l.split('\t')[1])).toEqual(['Z', 'a-c', 'a.b', 'a', 'a0', 'b', 'É.txt']);
    // The same listing fed to git itself gives the same tree id.
    expect(execFileSync('git', ['mktree'], { cwd: gitdir, input: tree, encoding: 'utf8' }).trim()).toBe(git(gitdir, 'rev-parse', `${oid}^{tree}`).trim());
    git(gitdir, 'fsck', '--strict', '--full');
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

  it('loses no durable commit and leaves git fsck clean when its writer is killed at any moment', async () => {
    const s = await store();
    const gitdir = s.gitdir('repo');
    // A writer in its own process commits without pause, saying which commits are durable, until it is killed.
    const script = `
      const { LocalGitStore } = await import(${JSON.stringify(path.resolve('dist/adapters/git/local-store.js'))});
      const s = new LocalGitStore(process.argv[1]);
      for (let i = 0; ; i++) {
        const staged = await s.stage('repo', { changes: [{ path: 'runs/' + (i % 7) + '/t' + (i % 50) + '.json', content: JSON.stringify({ i, pad: 'x'.repeat(i % 300) }) }, { path: 'state.json', content: String(i) }], message: 'c' + i + '\\n' });
        staged.durable.then((oid) => process.stdout.write('durable ' + oid + '\\n'));
      }`;
    const durable: string[] = [];
    for (let k = 0; k < 12; k++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script, s.root], { stdio: ['ignore', 'pipe', 'inherit'] });
      let seen = 0;
      await new Promise<void>((resolve) => {
        child.stdout!.on('data', (d: Buffer) => {
          for (const m of d.toString().matchAll(/durable ([0-9a-f]{40})/g)) durable.push(m[1]!);
          // Killed at a different point each time: after a few groups, at a random moment within one.
          if (++seen === 1) setTimeout(() => child.kill('SIGKILL'), 5 + Math.floor(Math.random() * 60));
        });
        child.on('exit', () => resolve());
      });
      const fsck = spawnSync('git', ['--git-dir', gitdir, 'fsck', '--strict', '--full'], { encoding: 'utf8' });
      expect(fsck.status, fsck.stderr + fsck.stdout).toBe(0);
      expect(fsck.stdout + fsck.stderr).not.toMatch(/error|missing|broken|corrupt/i);
      const head = git(gitdir, 'rev-parse', 'main').trim();
      // Every commit it said was durable is on the branch.
      for (const oid of durable.slice(-50)) expect(spawnSync('git', ['--git-dir', gitdir, 'merge-base', '--is-ancestor', oid, head]).status, oid).toBe(0);
    }
    expect(durable.length).toBeGreaterThan(12);
    // The next writer goes on from there, and clears what the dead ones were writing.
    const next = new LocalGitStore(s.root);
    const oid = await next.commit('repo', { changes: [{ path: 'after.txt', content: 'after' }], message: 'after\n' });
    await next.close();
    expect(git(gitdir, 'rev-parse', 'main').trim()).toBe(oid);
    expect(fs.readdirSync(path.join(gitdir, 'objects', 'pack')).filter((f) => f.startsWith('tmp_pack_'))).toEqual([]);
    git(gitdir, 'fsck', '--strict', '--full');
  });

  it('takes over a ref lock left by a writer that died holding it', async () => {
    const s = await store();
    await s.commit('repo', { changes: [{ path: 'a.txt', content: 'a' }], message: 'a\n' });
    const lock = path.join(s.gitdir('repo'), 'refs/heads/main.lock');
    fs.writeFileSync(lock, '');
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(lock, old, old);
    await new LocalGitStore(s.root).commit('repo', { changes: [{ path: 'b.txt', content: 'b' }], message: 'b\n' });
    expect(fs.existsSync(lock)).toBe(false);
    expect(git(s.gitdir('repo'), 'log', '--format=%s', 'main').trim().split('\n')).toEqual(['b', 'a']);
  });

  it('refuses a commit built on a read of the branch that another writer has moved since', async () => {
    const s = await store();
    await s.commit('repo', { changes: [{ path: 'a.txt', content: 'a' }], message: 'a\n' });
    const basis = await s.basis('repo');
    await new LocalGitStore(s.root).commit('repo', { changes: [{ path: 'b.txt', content: 'b' }], message: 'b\n' });
    await expect(s.commit('repo', { changes: [{ path: 'a.txt', content: 'stale' }], message: 'stale\n', basis })).rejects.toBeInstanceOf(ConflictError);
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
