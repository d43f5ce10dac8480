/**
 * One writer per branch, committing in groups: every commit is built in
 * memory at once (objects hashed, trees rewritten only along the paths that
 * change) and readable by this process straight away; commits made while
 * the previous group is being written form the next group, which goes to
 * disk as one pack, is fsynced, and only then moves the branch (a
 * compare-and-swap under git's lock file). A lone commit waits for nothing;
 * under load, a group is as large as what came during one disk write.
 *
 * When another process has moved the branch, the group and everything
 * staged after it is refused with a ConflictError, the writer reads the
 * branch again, and its epoch goes up: a commit built on an older basis is
 * refused too, so that nothing is ever built on a stale read.
 */
import path from 'node:path';
import { ConflictError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Basis, CommitOptions, Staged } from '../../core/ports.js';
import { Serial } from '../../core/serial.js';
import { encodeCommit, encodeObject, type EncodedObject } from './objects.js';
import { baseOf, parentOf, TipTrees } from './tip-trees.js';
import { writePack, type PackObject } from './pack.js';
import { compareAndSwap, readRef } from './refs.js';

export const AUTHOR = { name: 'gitjobs', email: 'gitjobs@localhost' };

/** Reads an object that is on disk. */
export interface ObjectSource {
  read(oid: string): Promise<EncodedObject | undefined>;
}

interface Waiter {
  resolve: (oid: string) => void;
  reject: (err: Error) => void;
  oid: string;
  /** What was asked for: a commit made without a basis is replayed on top when the branch moved. */
  options: CommitOptions;
}

interface Group {
  objects: PackObject[];
  commits: Waiter[];
  tip: string | undefined;
  /** The oid of each folder's last version in this group: the next version is stored as a delta against it. */
  lastTree: Map<string, string>;
  bytes: number;
}

const newGroup = (): Group => ({ objects: [], commits: [], tip: undefined, lastTree: new Map(), bytes: 0 });

/** A group past this many commits or bytes makes new commits wait for the disk: memory stays bounded, and a caller staging in a tight loop lets the write run. */
const GROUP_COMMITS = 4096;
const GROUP_BYTES = 32 * 1024 * 1024;
/**
 * Groups are written at most this often: under load a group gathers what
 * comes in this time, so that packs (and fsyncs) stay few; a commit staged
 * when nothing was written lately goes at once.
 */
const GROUP_GAP_MS = 20;

export class BranchWriter {
  private readonly serial = new Serial();
  /** This process's head: the last commit staged (null until the branch is read). */
  private tip: string | undefined | null = null;
  /** What the branch on disk points at, as far as this writer knows. */
  private durable: string | undefined;
  private epoch = 0;
  private readonly trees: TipTrees;
  private readonly repo: string;
  /** Objects staged and not yet on disk: this process reads them from here. */
  readonly pending = new Map<string, EncodedObject>();
  private group = newGroup();
  private flushing: Promise<void> | undefined;
  /** Durable once the last commit staged is (or refused). */
  private last: Promise<unknown> = Promise.resolve();
  /** Commits refused lately: a reader that asks for one is told to read again. */
  readonly refused = new Set<string>();
  /** When the last group began to be written. */
  private lastWrite = 0;

  constructor(
    private readonly gitdir: string,
    private readonly ref: string,
    private readonly source: ObjectSource,
    private readonly log?: Logger,
    /** Told after each group is durable (pack maintenance). */
    private readonly onFlushed?: () => void,
  ) {
    this.repo = path.basename(gitdir, '.git');
    this.trees = new TipTrees(this.repo, { read: async (oid) => this.pending.get(oid) ?? (await this.source.read(oid)) });
  }

  /** The head and epoch; the branch is read from disk, so that another writer's move is seen. */
  basis(): Promise<Basis> {
    return this.serial.run(async () => {
      await this.refresh();
      return { head: this.tip ?? undefined, epoch: this.epoch };
    });
  }

  /**
   * The head as this process sees it: its last commit while any of its
   * commits is still being written, else the branch as it is on disk (read
   * each time: another process may be the one writing).
   */
  async head(): Promise<string | undefined> {
    if (this.tip !== null && (this.flushing || this.group.commits.length)) return this.tip ?? undefined;
    return this.serial.run(async () => {
      await this.refresh();
      return this.tip ?? undefined;
    });
  }

  stage(options: CommitOptions): Promise<Staged> {
    return this.serial.run(() => this.build(options));
  }

  /** Resolves once everything staged so far is durable (or refused: the caller checks the epoch). */
  async flush(): Promise<void> {
    await this.last.catch(() => undefined);
  }

  /** Runs `fn` with no commit being built and nothing waiting to be written. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.serial.run(async () => {
      await this.flush();
      return fn();
    });
  }

  /** The branch head, inside `exclusive` (where `head` would wait for the section itself). */
  async headNow(): Promise<string | undefined> {
    await this.refresh();
    return this.tip ?? undefined;
  }

  /** Points the branch at `oid` (which must be on disk), inside `exclusive`. */
  async resetTo(oid: string): Promise<void> {
    for (;;) {
      const current = await readRef(this.gitdir, this.ref);
      if (await compareAndSwap(this.gitdir, this.ref, current, oid, this.log)) break;
    }
    this.forgetState(oid);
  }

  /** Stages a commit inside `exclusive` (a replay). */
  stageNow(options: CommitOptions): Promise<Staged> {
    return this.build(options);
  }

  private forgetState(head: string | undefined | null): void {
    this.tip = head;
    this.durable = head ?? undefined;
    this.epoch++;
    this.trees.clear();
  }

  /** Reads the branch from disk; when another writer moved it and nothing of ours is pending, builds on what is there. */
  private async refresh(): Promise<void> {
    const onDisk = await readRef(this.gitdir, this.ref);
    if (this.tip === null) {
      this.tip = this.durable = onDisk;
      return;
    }
    if (onDisk !== this.durable && !this.flushing && this.group.commits.length === 0) this.forgetState(onDisk);
  }

  private async build(options: CommitOptions): Promise<Staged> {
    const { changes, message, basis, absent } = options;
    await this.backpressure();
    for (;;) {
      if (this.tip === null) await this.refresh();
      const epoch = this.epoch;
      if (basis && basis.epoch !== epoch) throw new ConflictError(this.repo, basis.head, this.tip ?? undefined);
      // Every folder the commit touches is read first; then the commit is built with no await, so that a
      // group refused meanwhile (which resets the folders) cannot interleave with it.
      const paths = changes.map((c) => c.path.replace(/^\/+/, ''));
      for (const p of [...paths, ...(absent ?? [])]) for (let d = parentOf(p); ; d = parentOf(d)) {
        await this.trees.dir(this.tip ?? undefined, d);
        if (d === '') break;
      }
      if (this.epoch !== epoch || this.tip === null) continue; // refused while we read: read again
      for (const p of absent ?? []) {
        if (this.trees.must(parentOf(p)).has(baseOf(p))) throw new ConflictError(this.repo, basis?.head, this.tip ?? undefined, `${p} exists already`);
      }
      return this.buildNow(paths, options);
    }
  }

  private buildNow(paths: string[], options: CommitOptions): Staged {
    const contents = options.changes.map((c) => c.content);
    const message = options.message;
    const group = this.group;
    const add = (o: EncodedObject, deltaBase?: string) => {
      if (this.pending.has(o.oid)) return o.oid;
      this.pending.set(o.oid, o);
      group.objects.push(deltaBase ? { ...o, deltaBase } : o);
      group.bytes += o.body.length;
      return o.oid;
    };
    const dirty = new Set<string>(['']);
    paths.forEach((p, i) => {
      for (let d = parentOf(p); d !== ''; d = parentOf(d)) dirty.add(d);
      const dir = this.trees.must(parentOf(p));
      const content = contents[i];
      if (content === null || content === undefined) dir.delete(baseOf(p));
      else dir.set({ mode: '100644', oid: add(encodeObject('blob', typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content))), name: baseOf(p) });
    });
    // Deepest first, so that each parent sees its children's new trees.
    let root = '';
    for (const d of [...dirty].sort((a, b) => depth(b) - depth(a))) {
      const entries = this.trees.must(d);
      if (d !== '' && entries.size === 0) {
        this.trees.must(parentOf(d)).delete(baseOf(d));
        this.trees.forget(d);
        continue;
      }
      const tree = entries.encode();
      add(tree, group.lastTree.get(d));
      group.lastTree.set(d, tree.oid);
      if (d === '') root = tree.oid;
      else this.trees.must(parentOf(d)).set({ mode: '040000', oid: tree.oid, name: baseOf(d) });
    }
    const person = { ...AUTHOR, timestamp: Math.floor(Date.now() / 1000) };
    const commit = encodeCommit({ tree: root, parents: this.tip ? [this.tip] : [], author: person, committer: person, message });
    add(commit);
    this.tip = group.tip = commit.oid;
    let waiter!: Waiter;
    const durable = new Promise<string>((resolve, reject) => (waiter = { resolve, reject, oid: commit.oid, options }));
    durable.catch(() => undefined); // a caller that does not wait is not an unhandled rejection
    this.last = durable;
    group.commits.push(waiter);
    this.scheduleFlush();
    return { oid: commit.oid, durable };
  }

  private scheduleFlush(): void {
    if (this.flushing) return;
    this.flushing = (async () => {
      // What is staged in the same turn of the event loop goes in the same group; under load, what comes
      // within GROUP_GAP_MS of the last write.
      await new Promise((r) => setImmediate(r));
      while (this.group.commits.length) {
        const wait = this.lastWrite + GROUP_GAP_MS - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        this.lastWrite = Date.now();
        await this.writeGroup();
      }
    })().finally(() => {
      this.flushing = undefined;
      if (this.group.commits.length) this.scheduleFlush();
    });
  }

  /** Writes the current group: its pack, then the branch; refuses it (and what was staged on it) if the branch moved. */
  private async writeGroup(): Promise<void> {
    const group = this.group;
    this.group = newGroup();
    const base = this.durable;
    try {
      await writePack(this.gitdir, group.objects);
      if (!(await compareAndSwap(this.gitdir, this.ref, base, group.tip!, this.log))) {
        throw new ConflictError(this.repo, base, await readRef(this.gitdir, this.ref), 'another writer moved the branch; the commits staged on it were not kept');
      }
    } catch (err) {
      // Nothing staged since `base` is kept: this group, and whatever was staged on top of it meanwhile.
      const lost = [...group.commits, ...this.group.commits];
      for (const w of lost) this.refused.add(w.oid);
      while (this.refused.size > 10_000) this.refused.delete(this.refused.values().next().value!);
      this.group = newGroup();
      this.pending.clear();
      this.forgetState(null);
      for (const w of lost) {
        // On a basis, the caller read the branch to build the commit: it reads again. Without one, it goes on top.
        if (w.options.basis || !(err instanceof ConflictError)) w.reject(err as Error);
        else void this.serial.run(() => this.build(w.options)).then((s) => s.durable).then(w.resolve, w.reject);
      }
      return;
    }
    this.durable = group.tip;
    for (const o of group.objects) this.pending.delete(o.oid);
    this.trees.trim();
    for (const w of group.commits) w.resolve(w.oid);
    this.onFlushed?.();
  }

  /** Waits while the group is too big, so that staging cannot outrun the disk without bound. */
  private async backpressure(): Promise<void> {
    while ((this.group.bytes > GROUP_BYTES || this.group.commits.length >= GROUP_COMMITS) && this.flushing) await this.flushing;
  }
}

function depth(p: string): number {
  if (p === '') return 0;
  let n = 1;
  for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) n++;
  return n;
}
