/**
 * GitStore over bare repositories on local disk.
 *
 *  - Writes: one BranchWriter per repository (branch-writer.ts) builds each
 *    commit in memory and writes commits in groups, one pack per group,
 *    fsynced before the branch moves. No working tree, no index, no loose
 *    objects.
 *  - Reads: git's own reader, one `git cat-file --batch-command` per
 *    repository (cat-file.ts); commits this process staged and has not yet
 *    written are read from the writer's memory.
 *  - Packs are kept few by `git repack --geometric` in the background
 *    (maintenance.ts).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import git from 'isomorphic-git';
import { ConflictError, SizeLimitError } from '../../core/errors.js';
import { ZERO_SHA } from '../../core/events.js';
import type { Logger } from '../../core/logger.js';
import type { Basis, ChangedFile, CommitOptions, FileChange, GitStore, Staged, TreeEntry } from '../../core/ports.js';
import { processAlive } from '../process/alive.js';
import { BranchWriter, AUTHOR } from './branch-writer.js';
import { CatFile } from './cat-file.js';
import { PackMaintenance } from './maintenance.js';
import { isTreeMode, parseCommit, parseTree, type EncodedObject, type ObjectType, type TreeItem } from './objects.js';
import { removeStalePackTemps } from './pack.js';
import { safeFs } from './safe-fs.js';
import { diffTrees } from './tree-diff.js';
import { readAll } from '../../core/run-reader.js';

export { AUTHOR };

const TYPES: Record<string, TreeEntry['type']> = { blob: 'blob', tree: 'tree', commit: 'commit' };

/** Parsed trees kept for reads of commits still in memory. */
const TREE_CACHE = 4096;

interface Repo {
  writer: BranchWriter;
  reader: CatFile;
  maintenance: PackMaintenance;
}

/** A path in a commit's tree as git names it: no leading or trailing slash ('' is the root). */
const cleanPath = (p: string): string => p.replace(/^\/+|\/+$/g, '');

export class LocalGitStore implements GitStore {
  private readonly repos = new Map<string, Repo>();
  private readonly trees = new Map<string, TreeItem[]>();

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

  private repo(name: string): Repo {
    let r = this.repos.get(name);
    if (!r) {
      const gitdir = this.gitdir(name);
      const reader = new CatFile(gitdir);
      const maintenance = new PackMaintenance(gitdir, this.logger);
      const writer = new BranchWriter(gitdir, this.ref, { read: (oid) => this.readDurable(reader, oid) }, this.logger, () => maintenance.packWritten());
      // Temporary packs of writers killed mid-write (their pid is gone), as `git prune` would remove them.
      void removeStalePackTemps(gitdir, processAlive);
      r = { writer, reader, maintenance };
      this.repos.set(name, r);
    }
    return r;
  }

  private async readDurable(reader: CatFile, oid: string): Promise<EncodedObject | undefined> {
    const o = await reader.contents(oid);
    return o && { oid: o.oid, type: o.type as ObjectType, body: o.data };
  }

  /** An object this process staged, or one on disk. */
  private async object(repo: string, oid: string): Promise<EncodedObject | undefined> {
    const r = this.repo(repo);
    const o = r.writer.pending.get(oid) ?? (await this.readDurable(r.reader, oid));
    if (!o && r.writer.refused.has(oid)) throw new ConflictError(repo, oid, undefined, `commit ${oid.slice(0, 7)} was refused (another writer moved the branch); read again`);
    return o;
  }

  private async tree(repo: string, oid: string): Promise<TreeItem[]> {
    const cached = this.trees.get(oid);
    if (cached) return cached;
    const o = await this.object(repo, oid);
    if (!o || o.type !== 'tree') throw new Error(`${repo}: ${oid} is not a tree`);
    const items = parseTree(o.body);
    this.trees.set(oid, items);
    if (this.trees.size > TREE_CACHE) this.trees.delete(this.trees.keys().next().value!);
    return items;
  }

  /** The entry at `filepath` in `commit` ('' for its root tree), or undefined. */
  private async entry(repo: string, commit: string, filepath: string): Promise<{ oid: string; type: string } | undefined> {
    const r = this.repo(repo);
    const clean = cleanPath(filepath);
    if (!r.writer.pending.has(commit)) {
      const info = await r.reader.info(`${commit}:${clean}`);
      if (!info && r.writer.refused.has(commit)) throw new ConflictError(repo, commit, undefined, `commit ${commit.slice(0, 7)} was refused; read again`);
      return info && { oid: info.oid, type: info.type };
    }
    const c = await this.object(repo, commit);
    if (!c) return undefined;
    let current = { oid: parseCommit(c.body).tree, type: 'tree' };
    for (const name of clean ? clean.split('/') : []) {
      if (current.type !== 'tree') return undefined;
      const item = (await this.tree(repo, current.oid)).find((i) => i.name === name);
      if (!item) return undefined;
      current = { oid: item.oid, type: isTreeMode(item.mode) ? 'tree' : item.mode === '160000' ? 'commit' : 'blob' };
    }
    return current;
  }

  async head(repo: string): Promise<string | undefined> {
    return this.repo(repo).writer.head();
  }

  async basis(repo: string): Promise<Basis> {
    return this.repo(repo).writer.basis();
  }

  async readBytes(repo: string, commit: string, filepath: string, maxBytes?: number): Promise<Buffer | undefined> {
    const e = await this.entry(repo, commit, filepath);
    if (!e || e.type !== 'blob') return undefined;
    if (maxBytes !== undefined) {
      const size = await this.size(repo, e.oid);
      if (size !== undefined && size > maxBytes) throw new SizeLimitError(`${repo}:${filepath}`, size, maxBytes);
    }
    return (await this.object(repo, e.oid))?.body;
  }

  private async size(repo: string, oid: string): Promise<number | undefined> {
    const r = this.repo(repo);
    return r.writer.pending.get(oid)?.body.length ?? (await r.reader.info(oid))?.size;
  }

  async readFile(repo: string, commit: string, filepath: string, options: { maxBytes?: number } = {}): Promise<string | undefined> {
    return (await this.readBytes(repo, commit, filepath, options.maxBytes))?.toString('utf8');
  }

  async readFiles(repo: string, commit: string, paths: readonly string[]): Promise<(string | undefined)[]> {
    // Each folder's entries once; then every file by its blob id, READ_AHEAD at a time (the reader pipelines them).
    const folders = new Map<string, Promise<Map<string, TreeEntry>>>();
    const entryOf = async (p: string): Promise<TreeEntry | undefined> => {
      const clean = cleanPath(p);
      const slash = clean.lastIndexOf('/');
      const dir = slash < 0 ? '' : clean.slice(0, slash);
      let entries = folders.get(dir);
      if (!entries) folders.set(dir, (entries = this.listEntries(repo, commit, dir).then((es) => new Map(es.map((e) => [e.name, e])))));
      return (await entries).get(clean.slice(slash + 1));
    };
    return readAll(paths, async (p) => {
      const e = await entryOf(p);
      return e?.type === 'blob' ? (await this.object(repo, e.oid))?.body.toString('utf8') : undefined;
    });
  }

  async fileSize(repo: string, commit: string, filepath: string): Promise<number | undefined> {
    const e = await this.entry(repo, commit, filepath);
    return e?.type === 'blob' ? this.size(repo, e.oid) : undefined;
  }

  async listDir(repo: string, commit: string, filepath: string): Promise<string[]> {
    return (await this.listEntries(repo, commit, filepath)).map((e) => e.name);
  }

  async listEntries(repo: string, commit: string, filepath: string): Promise<TreeEntry[]> {
    const e = await this.entry(repo, commit, filepath);
    if (!e || e.type !== 'tree') return [];
    return (await this.tree(repo, e.oid)).map((i) => ({ name: i.name, oid: i.oid, type: isTreeMode(i.mode) ? 'tree' : (TYPES[i.mode === '160000' ? 'commit' : 'blob'] ?? 'blob') }));
  }

  async changedFiles(repo: string, before: string, after: string): Promise<ChangedFile[]> {
    const rootOf = async (commit: string) => (commit === ZERO_SHA ? undefined : (await this.entry(repo, commit, ''))?.oid);
    return diffTrees((oid) => this.tree(repo, oid), await rootOf(before), await rootOf(after));
  }

  stage(repo: string, options: CommitOptions): Promise<Staged> {
    return this.repo(repo).writer.stage(options);
  }

  async commit(repo: string, options: CommitOptions): Promise<string> {
    return (await this.stage(repo, options)).durable;
  }

  async isAncestor(repo: string, ancestor: string, commit: string): Promise<boolean> {
    if (ancestor === commit) return true;
    // Commits still in memory are walked here; on disk, git answers.
    const pending = this.repo(repo).writer.pending;
    let oid: string | undefined = commit;
    while (oid && pending.has(oid)) {
      if (oid === ancestor) return true;
      oid = parseCommit(pending.get(oid)!.body).parents[0];
    }
    if (!oid) return false;
    if (oid === ancestor) return true;
    return new Promise((resolve) => execFile('git', ['--git-dir', this.gitdir(repo), 'merge-base', '--is-ancestor', ancestor, oid!], (err) => resolve(!err)));
  }

  async hasCommit(repo: string, oid: string): Promise<boolean> {
    return (await this.object(repo, oid).catch(() => undefined))?.type === 'commit';
  }

  /**
   * Moves the branch to `upstream`. Local commits that `upstream` does not
   * have are replayed on top of it, each with its own message and changes,
   * so that none is lost and none is duplicated. Returns how many were replayed.
   */
  rebaseOnto(repo: string, upstream: string): Promise<number> {
    const writer = this.repo(repo).writer;
    return writer.exclusive(async () => {
      const local = await writer.headNow();
      if (!local || (await this.isAncestor(repo, local, upstream))) {
        await writer.resetTo(upstream);
        return 0;
      }
      if (await this.isAncestor(repo, upstream, local)) return 0; // ahead: nothing to replay
      const mine: { oid: string; parent: string | undefined; message: string }[] = [];
      for (let oid: string | undefined = local; oid && !(await this.isAncestor(repo, oid, upstream)); ) {
        const c = parseCommit((await this.object(repo, oid))!.body);
        mine.push({ oid, parent: c.parents[0], message: c.message });
        oid = c.parents[0];
      }
      const replays: { changes: FileChange[]; message: string }[] = [];
      for (const c of mine.reverse()) {
        const changes: FileChange[] = [];
        for (const f of await this.changedFiles(repo, c.parent ?? ZERO_SHA, c.oid)) {
          changes.push({ path: f.path, content: f.status === 'deleted' ? null : ((await this.readBytes(repo, c.oid, f.path)) ?? null) });
        }
        replays.push({ changes, message: c.message });
      }
      await writer.resetTo(upstream);
      let last: Promise<unknown> = Promise.resolve();
      for (const r of replays) last = (await writer.stageNow(r)).durable;
      await last;
      return replays.length;
    });
  }

  async ensureCommit(repo: string, commit: string): Promise<void> {
    if (!(await this.hasCommit(repo, commit))) throw new Error(`commit ${commit} is not in ${repo}`);
  }

  async flush(repo: string): Promise<void> {
    await this.repo(repo).writer.flush();
  }

  /** Commit messages of the branch, newest first. */
  async log(repo: string, depth?: number): Promise<{ oid: string; message: string }[]> {
    const head = await this.head(repo);
    const out: { oid: string; message: string }[] = [];
    if (!head) return out;
    for await (const c of this.history(repo, head)) {
      out.push(c);
      if (depth && out.length >= depth) break;
    }
    return out;
  }

  async *history(repo: string, head: string): AsyncIterable<{ oid: string; message: string }> {
    for (let oid: string | undefined = head; oid; ) {
      const o = await this.object(repo, oid);
      if (!o) throw new Error(`${repo}: commit ${oid} is missing`);
      const c = parseCommit(o.body);
      yield { oid, message: c.message };
      oid = c.parents[0];
    }
  }

  /** Stops the readers and waits for what is being written. */
  async close(): Promise<void> {
    for (const r of this.repos.values()) {
      await r.writer.flush();
      await r.maintenance.idle();
      r.reader.close();
    }
    this.repos.clear();
  }
}
