import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
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

  it('never leaves a half-written object behind a writer killed in the middle of writing it', async () => {
    const s = await store();
    const changes = [
      { path: 'projects/r/run.json', content: '{"state":"running"}\n'.repeat(2000) },
      { path: 'projects/r/tasks/a.json', content: '{"state":"queued"}\n'.repeat(2000) },
    ];
    // A writer in its own process dies (SIGKILL) half-way through writing its k-th object file: a blob, a tree, the commit.
    const script = `
      import fs from 'node:fs';
      const write = fs.promises.writeFile;
      const k = Number(process.argv[2]);
      let calls = 0;
      fs.promises.writeFile = async (file, data, options) => {
        if (String(file).includes('/objects/') && ++calls === k) {
          try {
            await write(file, data.subarray(0, Math.floor(data.length / 2)), options);
          } catch (err) {
            calls--; // the folder was missing: the writer makes it and tries again
            throw err;
          }
          process.kill(process.pid, 'SIGKILL');
          await new Promise(() => undefined);
        }
        return write(file, data, options);
      };
      const { LocalGitStore } = await import(${JSON.stringify(path.resolve('dist/adapters/git/local-store.js'))});
      await new LocalGitStore(process.argv[1]).commit('repo', { changes: ${JSON.stringify(changes)}, message: 'killed\\n' });
      process.exit(3);`;
    let kills = 0;
    for (let k = 1; ; k++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script, s.root, String(k)], { stdio: ['ignore', 'inherit', 'inherit'] });
      const [code, signal] = await new Promise<[number | null, string | null]>((r) => child.on('exit', (c, sig) => r([c, sig])));
      if (signal !== 'SIGKILL') {
        expect(code).toBe(3); // it got through a whole commit
        break;
      }
      kills++;
      // Whatever the dead writer left is a temporary file, never a cut object.
      git(s.gitdir('repo'), 'fsck', '--strict', '--full');
    }
    // The next writer reuses every object the dead ones were writing: each must be whole.
    const oid = await s.commit('repo', { changes, message: 'after\n' });
    const gitdir = s.gitdir('repo');
    git(gitdir, 'fsck', '--strict', '--full');
    expect(await s.readFile('repo', oid, 'projects/r/run.json')).toBe(changes[0]!.content);
    expect(git(gitdir, 'show', 'main:projects/r/tasks/a.json')).toBe(changes[1]!.content);
    expect(kills).toBeGreaterThanOrEqual(3); // blobs, trees and the commit were each cut in half once
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
