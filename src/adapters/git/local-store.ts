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

export { AUTHOR };

const TYPES: Record<string, TreeEntry['type']> = { blob: 'blob', tree: 'tree', commit: 'commit' };

/** Parsed trees kept for reads of commits still in memory. */
const TREE_CACHE = 4096;

interface Repo {
  writer: BranchWriter;
  reader: CatFile;
  maintenance: PackMaintenance;
}

/** A tree's item as a listing gives it. */
const entryOf = (i: TreeItem): TreeEntry => ({ name: i.name, oid: i.oid, type: isTreeMode(i.mode) ? 'tree' : (TYPES[i.mode === '160000' ? 'commit' : 'blob'] ?? 'blob') });

/** An object as git's reader answered it. */
const asObject = (o: { oid: string; type: string; data: Buffer } | undefined): EncodedObject | undefined => o && { oid: o.oid, type: o.type as ObjectType, body: o.data };

/** Objects asked of the reader in one request by readFiles. */
const READ_MANY = 4096;

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
    return asObject(await reader.contents(oid));
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
    return this.cacheTree(oid, parseTree(o.body));
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
    // Each folder's entries once; then the blobs, READ_MANY to a request to the reader (one write, one answer):
    // no promise per file, which for 10,000 task files is most of what reading them cost.
    const where = paths.map((p) => {
      const clean = cleanPath(p);
      const slash = clean.lastIndexOf('/');
      return { dir: slash < 0 ? '' : clean.slice(0, slash), name: clean.slice(slash + 1) };
    });
    const listed = await this.listFolders(repo, commit, [...new Set(where.map((w) => w.dir))]);
    const blobs = where.map((w) => {
      const e = listed.get(w.dir)?.get(w.name);
      return e?.type === 'blob' ? e.oid : undefined;
    });
    const wanted = blobs.filter((oid): oid is string => oid !== undefined);
    const read = await this.objects(repo, wanted);
    let k = 0;
    return blobs.map((oid) => (oid === undefined ? undefined : read[k++]?.body.toString('utf8')));
  }

  /** Many objects, in order: those this process staged from memory, the rest read READ_MANY to a request. */
  private async objects(repo: string, oids: readonly string[]): Promise<(EncodedObject | undefined)[]> {
    const r = this.repo(repo);
    const out = oids.map((oid) => r.writer.pending.get(oid));
    const durable = out.flatMap((o, i) => (o ? [] : [i]));
    for (let at = 0; at < durable.length; at += READ_MANY) {
      const part = durable.slice(at, at + READ_MANY);
      const read = await r.reader.contentsOf(part.map((i) => oids[i]!));
      part.forEach((i, k) => (out[i] = asObject(read[k])));
    }
    return out;
  }

  /**
   * The entries of many folders of one commit (undefined for one that is not
   * a folder there). The deepest folder they all are in is found as any path
   * is; below it, each folder's tree is found in its parent's, and the trees
   * of one depth are read in one request: a 10,000-task run's task files sit
   * in some 4,000 folders, which asked one by one cost a path walk each.
   */
  private async listFolders(repo: string, commit: string, dirs: readonly string[]): Promise<Map<string, Map<string, TreeEntry> | undefined>> {
    const listed = new Map<string, Map<string, TreeEntry> | undefined>();
    if (dirs.length === 0) return listed;
    const split = dirs.map((d) => (d ? d.split('/') : []));
    let common = 0;
    while (split.every((parts) => parts.length > common && parts[common] === split[0]![common])) common++;
    const base = split[0]!.slice(0, common).join('/');
    // Below the base: which names each folder on the way must be looked up in.
    const children = new Map<string, Set<string>>();
    for (const parts of split) {
      for (let k = common; k < parts.length; k++) {
        const parent = parts.slice(0, k).join('/');
        let names = children.get(parent);
        if (!names) children.set(parent, (names = new Set()));
        names.add(parts[k]!);
      }
    }
    const wanted = new Set(dirs);
    const top = await this.entry(repo, commit, base);
    let level = new Map<string, string | undefined>([[base, top?.type === 'tree' ? top.oid : undefined]]);
    while (level.size) {
      const trees = await this.treesOf(repo, [...level.values()].filter((oid): oid is string => oid !== undefined));
      const next = new Map<string, string | undefined>();
      for (const [dir, oid] of level) {
        const items = oid === undefined ? undefined : trees.get(oid);
        const entries = items && new Map(items.map((i) => [i.name, entryOf(i)]));
        if (wanted.has(dir)) listed.set(dir, entries);
        for (const name of children.get(dir) ?? []) {
          const e = entries?.get(name);
          next.set(dir ? `${dir}/${name}` : name, e?.type === 'tree' ? e.oid : undefined);
        }
      }
      level = next;
    }
    return listed;
  }

  /** Many trees, parsed: from the cache, the rest as objects (staged, or read in few requests). */
  private async treesOf(repo: string, oids: readonly string[]): Promise<Map<string, TreeItem[]>> {
    const found = new Map<string, TreeItem[]>();
    const missing: string[] = [];
    for (const oid of new Set(oids)) {
      const cached = this.trees.get(oid);
      if (cached) found.set(oid, cached);
      else missing.push(oid);
    }
    const read = await this.objects(repo, missing);
    missing.forEach((oid, k) => {
      const o = read[k];
      if (!o || o.type !== 'tree') throw new Error(`${repo}: ${oid} is not a tree`);
      found.set(oid, this.cacheTree(oid, parseTree(o.body)));
    });
    return found;
  }

  private cacheTree(oid: string, items: TreeItem[]): TreeItem[] {
    this.trees.set(oid, items);
    if (this.trees.size > TREE_CACHE) this.trees.delete(this.trees.keys().next().value!);
    return items;
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
    return (await this.tree(repo, e.oid)).map(entryOf);
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
