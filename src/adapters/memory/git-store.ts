/**
 * The GitStore port in memory, with its semantics: commits form one chain
 * per repository; a staged commit is readable at once and durable later
 * (at once by default, or when the test says, with `hold`); a commit built
 * on a basis that another writer has since moved is refused with a
 * ConflictError, and so is one that would record a path that exists.
 * `commitAsOther` plays that other writer (another process on the same
 * repositories). Object ids are SHA-1s of the content, as Git's would be
 * for the same bytes; they are not Git's ids.
 */
import { gitObjectId } from '../../core/git-ids.js';
import { createHash } from 'node:crypto';
import { ZERO_SHA } from '../../core/events.js';
import { ConflictError, SizeLimitError } from '../../core/errors.js';
import type { Basis, ChangedFile, CommitOptions, FileChange, GitStore, Staged, TreeEntry } from '../../core/ports.js';

interface Commit {
  oid: string;
  parent: string | undefined;
  files: Map<string, Buffer>;
  message: string;
}

interface Pending {
  oid: string;
  options: CommitOptions;
  promise: Promise<string>;
  resolve: (oid: string) => void;
  reject: (err: Error) => void;
}

interface Repo {
  commits: Map<string, Commit>;
  /** The branch as every process sees it: durable. */
  durable: string | undefined;
  /** This process's view: the durable head plus its staged commits. */
  tip: string | undefined;
  epoch: number;
  pending: Pending[];
}

const sha1 = (data: string | Buffer) => createHash('sha1').update(data).digest('hex');
const bytesOf = (content: string | Uint8Array) => (typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content));

export class MemoryGitStore implements GitStore {
  private readonly repos = new Map<string, Repo>();
  private seq = 0;
  /** When set, staged commits wait for `release` (or `failPending`) before they are durable. */
  private holding = false;

  private repo(name: string): Repo {
    let r = this.repos.get(name);
    if (!r) this.repos.set(name, (r = { commits: new Map(), durable: undefined, tip: undefined, epoch: 0, pending: [] }));
    return r;
  }

  private commitOf(repo: string, oid: string): Commit {
    const c = this.repo(repo).commits.get(oid);
    if (!c) throw new Error(`commit ${oid} is not in ${repo}`);
    return c;
  }

  private build(r: Repo, parent: string | undefined, changes: FileChange[], message: string): Commit {
    const files = new Map(parent ? r.commits.get(parent)!.files : []);
    for (const c of changes) {
      const path = c.path.replace(/^\/+/, '');
      if (c.content === null) files.delete(path);
      else files.set(path, bytesOf(c.content));
    }
    const oid = sha1(`${parent ?? ''}\0${message}\0${this.seq++}\0${[...files].map(([p, b]) => `${p}:${sha1(b)}`).join(',')}`);
    const commit = { oid, parent, files, message };
    r.commits.set(oid, commit);
    return commit;
  }

  /** Durability is held back until `release` (or refused by `failPending`), as a disk write in progress would be. */
  hold(): void {
    this.holding = true;
  }

  /** Makes every staged commit durable. */
  release(): void {
    this.holding = false;
    for (const r of this.repos.values()) {
      r.durable = r.tip;
      for (const p of r.pending.splice(0)) p.resolve(p.oid);
    }
  }

  /**
   * Another writer (another process) commits to the branch: this process's
   * staged commits are lost; those made on a basis are refused, the others
   * are replayed on top, as the real store does.
   */
  async commitAsOther(repo: string, options: { changes: FileChange[]; message: string }): Promise<string> {
    const r = this.repo(repo);
    const commit = this.build(r, r.durable, options.changes, options.message);
    const lost = r.pending.splice(0);
    r.durable = r.tip = commit.oid;
    r.epoch++;
    for (const p of lost) {
      if (p.options.basis) p.reject(new ConflictError(repo, p.oid, commit.oid));
      else void this.stage(repo, p.options).then((s) => s.durable).then(p.resolve, p.reject);
    }
    return commit.oid;
  }

  async head(repo: string): Promise<string | undefined> {
    return this.repo(repo).tip;
  }

  async basis(repo: string): Promise<Basis> {
    const r = this.repo(repo);
    return { head: r.tip, epoch: r.epoch };
  }

  async stage(repo: string, options: CommitOptions): Promise<Staged> {
    const r = this.repo(repo);
    if (options.basis && options.basis.epoch !== r.epoch) throw new ConflictError(repo, options.basis.head, r.tip);
    const files = r.tip ? r.commits.get(r.tip)!.files : new Map<string, Buffer>();
    for (const p of options.absent ?? []) if (files.has(p)) throw new ConflictError(repo, options.basis?.head, r.tip, `${p} exists already`);
    const commit = this.build(r, r.tip, options.changes, options.message);
    r.tip = commit.oid;
    if (!this.holding) {
      r.durable = commit.oid;
      return { oid: commit.oid, durable: Promise.resolve(commit.oid) };
    }
    let resolve!: (oid: string) => void;
    let reject!: (err: Error) => void;
    const durable = new Promise<string>((res, rej) => ((resolve = res), (reject = rej)));
    durable.catch(() => undefined);
    r.pending.push({ oid: commit.oid, options, promise: durable, resolve, reject });
    return { oid: commit.oid, durable };
  }

  async commit(repo: string, options: CommitOptions): Promise<string> {
    return (await this.stage(repo, options)).durable;
  }

  async readFile(repo: string, commit: string, path: string, options: { maxBytes?: number } = {}): Promise<string | undefined> {
    return (await this.readBytes(repo, commit, path, options.maxBytes))?.toString('utf8');
  }

  async readBytes(repo: string, commit: string, path: string, maxBytes?: number): Promise<Buffer | undefined> {
    const bytes = this.commitOf(repo, commit).files.get(path);
    if (bytes && maxBytes !== undefined && bytes.length > maxBytes) throw new SizeLimitError(`${repo}:${path}`, bytes.length, maxBytes);
    return bytes === undefined ? undefined : Buffer.from(bytes);
  }

  async fileSize(repo: string, commit: string, path: string): Promise<number | undefined> {
    return this.commitOf(repo, commit).files.get(path)?.length;
  }

  async listEntries(repo: string, commit: string, path: string): Promise<TreeEntry[]> {
    const prefix = path === '' ? '' : `${path.replace(/\/+$/, '')}/`;
    const children = new Map<string, { type: 'blob' | 'tree'; parts: string[] }>();
    for (const [p, bytes] of this.commitOf(repo, commit).files) {
      if (!p.startsWith(prefix)) continue;
      const rest = p.slice(prefix.length);
      const slash = rest.indexOf('/');
      const name = slash < 0 ? rest : rest.slice(0, slash);
      const entry = children.get(name) ?? { type: slash < 0 ? 'blob' : 'tree', parts: [] };
      entry.parts.push(`${rest}:${sha1(bytes)}`);
      children.set(name, entry);
    }
    // A file's id is git's blob id, as a real store gives it; a folder's is a hash of what it holds.
    return [...children].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, e]) => ({ name, type: e.type, oid: e.type === 'blob' ? gitObjectId('blob', this.commitOf(repo, commit).files.get(prefix + name)!) : sha1(e.parts.sort().join('\n')) }));
  }

  async listDir(repo: string, commit: string, path: string): Promise<string[]> {
    return (await this.listEntries(repo, commit, path)).map((e) => e.name);
  }

  async changedFiles(repo: string, before: string, after: string): Promise<ChangedFile[]> {
    const a = before === ZERO_SHA ? new Map<string, Buffer>() : this.commitOf(repo, before).files;
    const b = this.commitOf(repo, after).files;
    const out: ChangedFile[] = [];
    for (const path of [...new Set([...a.keys(), ...b.keys()])].sort()) {
      const x = a.get(path);
      const y = b.get(path);
      if (x && y) {
        if (!x.equals(y)) out.push({ path, status: 'modified' });
      } else out.push({ path, status: y ? 'added' : 'deleted' });
    }
    return out;
  }

  async isAncestor(repo: string, ancestor: string, commit: string): Promise<boolean> {
    for (let oid: string | undefined = commit; oid; oid = this.repo(repo).commits.get(oid)?.parent) if (oid === ancestor) return true;
    return false;
  }

  async ensureCommit(repo: string, commit: string): Promise<void> {
    this.commitOf(repo, commit);
  }

  async flush(repo: string): Promise<void> {
    await Promise.all(this.repo(repo).pending.map((p) => p.promise));
  }

  async log(repo: string, depth?: number): Promise<{ oid: string; message: string }[]> {
    const out: { oid: string; message: string }[] = [];
    const tip = this.repo(repo).tip;
    if (!tip) return out;
    for await (const c of this.history(repo, tip)) {
      out.push(c);
      if (depth && out.length >= depth) break;
    }
    return out;
  }

  async *history(repo: string, head: string): AsyncIterable<{ oid: string; message: string }> {
    for (let oid: string | undefined = head; oid; ) {
      const c = this.commitOf(repo, oid);
      yield { oid, message: c.message };
      oid = c.parent;
    }
  }

  /** Every subject of the branch, oldest first: what `git log --reverse --format=%s` would print. */
  async subjects(repo: string): Promise<string[]> {
    return (await this.log(repo)).map((c) => c.message.split('\n', 1)[0]!).reverse();
  }
}
