/**
 * GitStore over bare repositories on local disk: isomorphic-git reads, and
 * loose-objects.ts writes.
 *
 * Writes go straight to the object database — blobs, trees, a commit, all at
 * once, then the branch ref — with no working tree and no index. Each
 * repository has one writer that keeps the trees of its branch head in
 * memory, so a commit rewrites only the trees along the paths it changes.
 */
import fs from 'node:fs';
import path from 'node:path';
import git from 'isomorphic-git';
import { safeFs } from './safe-fs.js';
import { encodeCommit, encodeObject, encodeTree, LooseObjectWriter, type EncodedObject } from './loose-objects.js';
import type { ChangedFile, CommitOptions, FileChange, GitStore, TreeEntry } from '../../core/ports.js';
import { ConflictError } from '../../core/errors.js';
import { Serial } from '../../core/serial.js';
import { ZERO_SHA } from '../../core/events.js';
import type { Logger } from '../../core/logger.js';

export const AUTHOR = { name: 'gitjobs', email: 'gitjobs@localhost' };

interface Entry {
  mode: string;
  oid: string;
  type: 'blob' | 'tree' | 'commit';
}

type Dir = Map<string, Entry>;

/** A ref lock older than any live writer holds one. */
export const STALE_LOCK_MS = 10_000;

/** Removes a lock file last touched more than STALE_LOCK_MS ago; true if it did. */
async function breakStaleLock(lockPath: string, log?: Logger): Promise<boolean> {
  try {
    const { mtimeMs } = await fs.promises.stat(lockPath);
    if (Date.now() - mtimeMs < STALE_LOCK_MS) return false;
    await fs.promises.unlink(lockPath);
    log?.warn({ lock: lockPath, ageMs: Math.round(Date.now() - mtimeMs) }, 'removed a ref lock left by a writer that is gone');
    return true;
  } catch {
    return false; // released meanwhile
  }
}

/** One writer per repository: serialised commits on a cached tree. */
class BranchWriter {
  private readonly serial = new Serial();
  private head: string | undefined | null = null; // null: not read yet
  private dirs = new Map<string, Dir>();
  private readonly cache = {};
  private readonly objects: LooseObjectWriter;

  constructor(
    private readonly gitdir: string,
    private readonly ref: string,
    private readonly log?: Logger,
  ) {
    this.objects = new LooseObjectWriter(gitdir);
  }

  commit(changes: FileChange[], message: string, expectedHead?: string): Promise<string> {
    return this.exclusive(() => this.write(changes, message, expectedHead));
  }

  /** Runs `fn` between two commits, with no other write in progress. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.serial.run(fn);
  }

  /** Points the branch at `oid` (which must exist) and forgets the cached trees. */
  async reset(oid: string): Promise<void> {
    for (;;) {
      const current = await this.currentHead();
      if (await this.compareAndSwap(current, oid)) break;
    }
    this.head = oid;
    this.dirs.clear();
  }

  /**
   * Moves the branch from `expected` to `next` under Git's own lock file
   * (`<ref>.lock`, as git itself takes it), so that other processes and the
   * git CLI never see a lost update. False when the branch is not at `expected`.
   */
  private async compareAndSwap(expected: string | undefined, next: string): Promise<boolean> {
    const refPath = path.join(this.gitdir, this.ref);
    const lockPath = `${refPath}.lock`;
    fs.mkdirSync(path.dirname(refPath), { recursive: true });
    let lock: fs.promises.FileHandle | undefined;
    for (let i = 0; !lock; i++) {
      try {
        lock = await fs.promises.open(lockPath, 'wx');
      } catch (err) {
        if ((err as { code?: string }).code !== 'EEXIST') throw err;
        // A ref lock is held for milliseconds; one this old was left by a process that died holding it (SIGKILL, power loss).
        if (i % 200 === 199 && (await breakStaleLock(lockPath, this.log))) continue;
        if (i > 6000) throw new Error(`${lockPath} has been held for over 30 s; remove it if no git or gitjobs process is writing`);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    try {
      const current = await this.currentHead();
      if (current !== expected) {
        await lock.close();
        await fs.promises.unlink(lockPath);
        return false;
      }
      await lock.writeFile(`${next}\n`);
      await lock.close();
      await fs.promises.rename(lockPath, refPath);
      return true;
    } catch (err) {
      await lock.close().catch(() => undefined);
      await fs.promises.unlink(lockPath).catch(() => undefined);
      throw err;
    }
  }

  /** Writes a commit inside an `exclusive` section. */
  writeNow(changes: FileChange[], message: string): Promise<string> {
    return this.write(changes, message);
  }

  private async refresh(): Promise<void> {
    const head = await this.currentHead();
    if (head !== this.head) {
      // Someone else moved the branch (or this is the first write): build on what is there.
      this.head = head;
      this.dirs.clear();
    }
  }

  private async currentHead(): Promise<string | undefined> {
    // The loose ref file is what git and this writer update; read it directly (packed refs as a fallback).
    try {
      const text = (await fs.promises.readFile(path.join(this.gitdir, this.ref), 'utf8')).trim();
      if (/^[0-9a-f]{40}$/.test(text)) return text;
    } catch {
      /* not loose */
    }
    try {
      return await git.resolveRef({ fs: safeFs, gitdir: this.gitdir, ref: this.ref });
    } catch {
      return undefined;
    }
  }

  private async dir(dirPath: string): Promise<Dir> {
    const cached = this.dirs.get(dirPath);
    if (cached) return cached;
    let entries: Dir = new Map();
    if (dirPath === '') {
      if (this.head) {
        const { commit } = await git.readCommit({ fs: safeFs, gitdir: this.gitdir, oid: this.head, cache: this.cache });
        entries = await this.readTree(commit.tree);
      }
    } else {
      const parent = await this.dir(parentOf(dirPath));
      const e = parent.get(baseOf(dirPath));
      if (e?.type === 'tree') entries = await this.readTree(e.oid);
    }
    this.dirs.set(dirPath, entries);
    return entries;
  }

  private async readTree(oid: string): Promise<Dir> {
    const { tree } = await git.readTree({ fs: safeFs, gitdir: this.gitdir, oid, cache: this.cache });
    return new Map(tree.map((e) => [e.path, { mode: e.mode, oid: e.oid, type: e.type }]));
  }

  private async write(changes: FileChange[], message: string, expectedHead?: string): Promise<string> {
    for (;;) {
      // The head is read once per writer and then trusted: the compare-and-swap below notices any other writer.
      if (this.head === null) await this.refresh();
      if (expectedHead !== undefined && this.head !== expectedHead) {
        await this.refresh();
        if (this.head !== expectedHead) throw new ConflictError(path.basename(this.gitdir, '.git'), expectedHead, this.head ?? undefined);
      }
      let oid: string;
      try {
        oid = await this.build(changes, message);
      } catch (err) {
        // The cached trees may hold half of this commit: read them again next time.
        this.head = null;
        this.dirs.clear();
        throw err;
      }
      if (await this.compareAndSwap(this.head ?? undefined, oid)) {
        this.head = oid;
        return oid;
      }
      // Another process committed between our read and our write: build again on top of it.
      this.head = null;
      this.dirs.clear();
    }
  }

  private async build(changes: FileChange[], message: string): Promise<string> {
    // Everything is hashed in memory first, then all the objects are written at once.
    const objects = new Map<string, EncodedObject>();
    const add = (o: EncodedObject) => {
      objects.set(o.oid, o);
      return o.oid;
    };
    const dirty = new Set<string>(['']);
    for (const change of changes) {
      const clean = change.path.replace(/^\/+/, '');
      const dirPath = parentOf(clean);
      for (let d = dirPath; d !== ''; d = parentOf(d)) dirty.add(d);
      const dir = await this.dir(dirPath);
      if (change.content === null) {
        dir.delete(baseOf(clean));
      } else {
        const blob = typeof change.content === 'string' ? Buffer.from(change.content, 'utf8') : Buffer.from(change.content);
        dir.set(baseOf(clean), { mode: '100644', oid: add(encodeObject('blob', blob)), type: 'blob' });
      }
    }
    // Deepest first, so each parent sees its children's new trees.
    const order = [...dirty].sort((a, b) => depth(b) - depth(a));
    let root = '';
    for (const d of order) {
      const entries = await this.dir(d);
      if (d !== '' && entries.size === 0) {
        (await this.dir(parentOf(d))).delete(baseOf(d));
        continue;
      }
      const oid = add(encodeTree([...entries].map(([name, e]) => ({ name, mode: e.mode, oid: e.oid }))));
      if (d === '') root = oid;
      else (await this.dir(parentOf(d))).set(baseOf(d), { mode: '040000', oid, type: 'tree' });
    }
    const person = { ...AUTHOR, timestamp: Math.floor(Date.now() / 1000) };
    const commit = add(encodeCommit({ tree: root, parents: this.head ? [this.head] : [], author: person, committer: person, message }));
    await this.objects.write([...objects.values()]);
    return commit;
  }
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}
function baseOf(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}
function depth(p: string): number {
  return p === '' ? 0 : p.split('/').length;
}

export class LocalGitStore implements GitStore {
  private readonly writers = new Map<string, BranchWriter>();
  private readonly cache = {};

  constructor(
    /** Folder holding `<repo>.git` bare repositories. */
    readonly root: string,
    readonly branch = 'main',
    private readonly logger?: Logger,
  ) {}

  gitdir(repo: string): string {
    return path.join(this.root, `${repo}.git`);
  }

  private get ref(): string {
    return `refs/heads/${this.branch}`;
  }

  exists(repo: string): boolean {
    return fs.existsSync(path.join(this.gitdir(repo), 'HEAD'));
  }

  /** Creates an empty bare repository whose HEAD is the configured branch. */
  async create(repo: string): Promise<void> {
    const gitdir = this.gitdir(repo);
    await git.init({ fs: safeFs, gitdir, bare: true, defaultBranch: this.branch });
    // Pushes over the built-in smart-HTTP host are allowed by default; the host itself decides who may push.
    await git.setConfig({ fs: safeFs, gitdir, path: 'http.receivepack', value: 'true' });
  }

  async head(repo: string): Promise<string | undefined> {
    try {
      return await git.resolveRef({ fs: safeFs, gitdir: this.gitdir(repo), ref: this.ref });
    } catch {
      return undefined;
    }
  }

  async readFile(repo: string, commit: string, filepath: string): Promise<string | undefined> {
    const bytes = await this.readBytes(repo, commit, filepath);
    return bytes && Buffer.from(bytes).toString('utf8');
  }

  async readBytes(repo: string, commit: string, filepath: string): Promise<Uint8Array | undefined> {
    try {
      const { blob } = await git.readBlob({ fs: safeFs, gitdir: this.gitdir(repo), oid: commit, filepath, cache: this.cache });
      return blob;
    } catch (err) {
      if ((err as { code?: string }).code === 'NotFoundError') return undefined;
      throw err;
    }
  }

  async listDir(repo: string, commit: string, filepath: string): Promise<string[]> {
    return (await this.listEntries(repo, commit, filepath)).map((e) => e.name);
  }

  async listEntries(repo: string, commit: string, filepath: string): Promise<TreeEntry[]> {
    try {
      const { tree } = await git.readTree({ fs: safeFs, gitdir: this.gitdir(repo), oid: commit, filepath, cache: this.cache });
      return tree.map((e) => ({ name: e.path, oid: e.oid, type: e.type }));
    } catch (err) {
      if ((err as { code?: string }).code === 'NotFoundError') return [];
      throw err;
    }
  }

  async changedFiles(repo: string, before: string, after: string): Promise<ChangedFile[]> {
    const gitdir = this.gitdir(repo);
    const rootOf = async (commit: string) =>
      commit === ZERO_SHA ? undefined : (await git.readCommit({ fs: safeFs, gitdir, oid: commit, cache: this.cache })).commit.tree;
    const out: ChangedFile[] = [];
    await this.diff(gitdir, await rootOf(before), await rootOf(after), '', out);
    return out;
  }

  private async diff(gitdir: string, a: string | undefined, b: string | undefined, prefix: string, out: ChangedFile[]): Promise<void> {
    if (a === b) return;
    const read = async (oid: string | undefined) =>
      oid ? new Map((await git.readTree({ fs: safeFs, gitdir, oid, cache: this.cache })).tree.map((e) => [e.path, e])) : new Map();
    const [ea, eb] = await Promise.all([read(a), read(b)]);
    for (const name of new Set([...ea.keys(), ...eb.keys()])) {
      const x = ea.get(name);
      const y = eb.get(name);
      const p = prefix + name;
      if (x?.oid === y?.oid) continue;
      const xTree = x?.type === 'tree' ? x.oid : undefined;
      const yTree = y?.type === 'tree' ? y.oid : undefined;
      if (xTree || yTree) await this.diff(gitdir, xTree, yTree, `${p}/`, out);
      const xBlob = x && x.type === 'blob';
      const yBlob = y && y.type === 'blob';
      if (xBlob && yBlob) out.push({ path: p, status: 'modified' });
      else if (yBlob) out.push({ path: p, status: 'added' });
      else if (xBlob) out.push({ path: p, status: 'deleted' });
    }
  }

  private writer(repo: string): BranchWriter {
    let writer = this.writers.get(repo);
    if (!writer) {
      writer = new BranchWriter(this.gitdir(repo), this.ref, this.logger);
      this.writers.set(repo, writer);
    }
    return writer;
  }

  commit(repo: string, options: CommitOptions): Promise<string> {
    return this.writer(repo).commit(options.changes, options.message, options.expectedHead);
  }

  async isAncestor(repo: string, ancestor: string, commit: string): Promise<boolean> {
    if (ancestor === commit) return true;
    try {
      return await git.isDescendent({ fs: safeFs, gitdir: this.gitdir(repo), oid: commit, ancestor, depth: -1, cache: this.cache });
    } catch {
      return false;
    }
  }

  async hasCommit(repo: string, oid: string): Promise<boolean> {
    try {
      await git.readCommit({ fs: safeFs, gitdir: this.gitdir(repo), oid, cache: this.cache });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Moves the branch to `upstream`. Local commits that `upstream` does not
   * have are replayed on top of it, each with its own message and changes,
   * so that none is lost and none is duplicated. Returns how many were replayed.
   */
  rebaseOnto(repo: string, upstream: string): Promise<number> {
    const writer = this.writer(repo);
    return writer.exclusive(async () => {
      const local = await this.head(repo);
      if (!local || (await this.isAncestor(repo, local, upstream))) {
        await writer.reset(upstream);
        return 0;
      }
      if (await this.isAncestor(repo, upstream, local)) return 0; // ahead: nothing to replay
      const mine: { oid: string; parent: string | undefined; message: string }[] = [];
      for (let oid: string | undefined = local; oid && !(await this.isAncestor(repo, oid, upstream)); ) {
        const { commit } = await git.readCommit({ fs: safeFs, gitdir: this.gitdir(repo), oid, cache: this.cache });
        mine.push({ oid, parent: commit.parent[0], message: commit.message });
        oid = commit.parent[0];
      }
      const replays: { changes: FileChange[]; message: string }[] = [];
      for (const c of mine.reverse()) {
        const changes: FileChange[] = [];
        for (const f of await this.changedFiles(repo, c.parent ?? ZERO_SHA, c.oid)) {
          changes.push({ path: f.path, content: f.status === 'deleted' ? null : ((await this.readBytes(repo, c.oid, f.path)) ?? null) });
        }
        replays.push({ changes, message: c.message });
      }
      await writer.reset(upstream);
      for (const r of replays) await writer.writeNow(r.changes, r.message);
      return replays.length;
    });
  }

  async ensureCommit(repo: string, commit: string): Promise<void> {
    if (!(await this.hasCommit(repo, commit))) throw new Error(`commit ${commit} is not in ${repo}`);
  }

  async flush(): Promise<void> {}

  /** Commit messages of the branch, newest first. */
  async log(repo: string, depth?: number): Promise<{ oid: string; message: string }[]> {
    const head = await this.head(repo);
    if (!head) return [];
    const commits = await git.log({ fs: safeFs, gitdir: this.gitdir(repo), ref: head, ...(depth ? { depth } : {}), cache: this.cache });
    return commits.map((c) => ({ oid: c.oid, message: c.commit.message }));
  }

  async *history(repo: string, head: string): AsyncIterable<{ oid: string; message: string }> {
    const gitdir = this.gitdir(repo);
    for (let oid: string | undefined = head; oid; ) {
      const { commit } = await git.readCommit({ fs: safeFs, gitdir, oid, cache: this.cache });
      yield { oid, message: commit.message };
      oid = commit.parent[0];
    }
  }
}

/** Every file below a folder, as changes, for a first commit from a template. */
export function filesOf(dir: string, base = dir): FileChange[] {
  const out: FileChange[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesOf(full, base));
    else if (entry.isFile()) out.push({ path: path.relative(base, full).split(path.sep).join('/'), content: fs.readFileSync(full) });
  }
  return out;
}
