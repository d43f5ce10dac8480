/**
 * GitStore for repositories that live on a forge (GitHub, Gitea): each is
 * mirrored in a local bare repository. Reads are local; pushed commits are
 * fetched on demand; our commits are written locally and pushed back in
 * batches. A push refused because someone else pushed first is answered by
 * fetching and replaying our commits on top: none is lost, none duplicated.
 */
import fs from 'node:fs';
import git from 'isomorphic-git';
import { safeFs } from './safe-fs.js';
import http from 'isomorphic-git/http/node';
import type { Logger } from '../../core/logger.js';
import type { Basis, ChangedFile, CommitOptions, GitStore, Staged, TreeEntry } from '../../core/ports.js';
import { LocalGitStore } from './local-store.js';

export interface RemoteAuth {
  username: string;
  password: string;
}

export interface MirrorStoreOptions {
  /** Folder of the local mirrors. */
  root: string;
  branch: string;
  /** Clone URL of each repository by name. */
  urls: Record<string, string>;
  auth?: RemoteAuth | undefined;
  log: Logger;
  /** How long commits gather before a push (default 200 ms). */
  batchMs?: number;
  /** Pushes tried before giving up for now (default 8). */
  maxPushAttempts?: number;
}

export class MirrorGitStore implements GitStore {
  readonly local: LocalGitStore;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly pushing = new Map<string, Promise<void>>();
  private readonly fetching = new Map<string, Promise<string | undefined>>();
  /** Pushes that failed in a row, by repository: the next try waits longer. */
  private readonly failures = new Map<string, number>();
  private closed = false;

  constructor(private readonly options: MirrorStoreOptions) {
    this.local = new LocalGitStore(options.root, options.branch, options.log);
  }

  private url(repo: string): string {
    const url = this.options.urls[repo];
    if (!url) throw new Error(`no remote URL for repository ${repo}`);
    return url;
  }

  private get onAuth() {
    const auth = this.options.auth;
    return auth ? () => auth : undefined;
  }

  /** Creates the mirrors that do not exist and brings every one up to date. */
  async init(): Promise<void> {
    fs.mkdirSync(this.options.root, { recursive: true });
    for (const repo of Object.keys(this.options.urls)) {
      if (!this.local.exists(repo)) {
        await this.local.create(repo);
        await git.addRemote({ fs: safeFs, gitdir: this.local.gitdir(repo), remote: 'origin', url: this.url(repo) });
      }
      await this.sync(repo);
    }
  }

  /** Fetches the branch and integrates it: fast-forward, or replay of our unpushed commits on top. */
  sync(repo: string): Promise<string | undefined> {
    let p = this.fetching.get(repo);
    if (!p) {
      p = this.doSync(repo).finally(() => this.fetching.delete(repo));
      this.fetching.set(repo, p);
    }
    return p;
  }

  private async doSync(repo: string): Promise<string | undefined> {
    const r = await git.fetch({
      fs: safeFs,
      http,
      gitdir: this.local.gitdir(repo),
      url: this.url(repo),
      ref: this.options.branch,
      singleBranch: true,
      tags: false,
      ...(this.onAuth ? { onAuth: this.onAuth } : {}),
    });
    const remote = r.fetchHead ?? undefined;
    if (remote) {
      const replayed = await this.local.rebaseOnto(repo, remote);
      if (replayed) this.options.log.info({ repo, replayed }, 'replayed our commits on top of commits pushed by someone else');
    }
    return remote;
  }

  /** The branch head the remote has, as `git ls-remote` would say. */
  async remoteHead(repo: string): Promise<string | undefined> {
    const refs = await git.listServerRefs({ http, url: this.url(repo), prefix: `refs/heads/${this.options.branch}`, ...(this.onAuth ? { onAuth: this.onAuth } : {}) });
    return refs.find((r) => r.ref === `refs/heads/${this.options.branch}`)?.oid;
  }

  head(repo: string): Promise<string | undefined> {
    return this.local.head(repo);
  }
  basis(repo: string): Promise<Basis> {
    return this.local.basis(repo);
  }
  readFile(repo: string, commit: string, path: string, options?: { maxBytes?: number }): Promise<string | undefined> {
    return this.local.readFile(repo, commit, path, options);
  }

  readBytes(repo: string, commit: string, path: string, maxBytes?: number): Promise<Buffer | undefined> {
    return this.local.readBytes(repo, commit, path, maxBytes);
  }
  fileSize(repo: string, commit: string, path: string): Promise<number | undefined> {
    return this.local.fileSize(repo, commit, path);
  }
  listDir(repo: string, commit: string, path: string): Promise<string[]> {
    return this.local.listDir(repo, commit, path);
  }
  readFiles(repo: string, commit: string, paths: readonly string[]): Promise<(string | undefined)[]> {
    return this.local.readFiles(repo, commit, paths);
  }

  listEntries(repo: string, commit: string, path: string): Promise<TreeEntry[]> {
    return this.local.listEntries(repo, commit, path);
  }
  history(repo: string, head: string): AsyncIterable<{ oid: string; message: string }> {
    return this.local.history(repo, head);
  }
  isAncestor(repo: string, ancestor: string, commit: string): Promise<boolean> {
    return this.local.isAncestor(repo, ancestor, commit);
  }

  async changedFiles(repo: string, before: string, after: string): Promise<ChangedFile[]> {
    await this.ensureCommit(repo, after);
    return this.local.changedFiles(repo, before, after);
  }

  async ensureCommit(repo: string, commit: string): Promise<void> {
    if (await this.local.hasCommit(repo, commit)) return;
    await this.sync(repo);
    if (!(await this.local.hasCommit(repo, commit))) throw new Error(`commit ${commit.slice(0, 7)} is not on ${this.url(repo)} (${this.options.branch})`);
  }

  async commit(repo: string, options: CommitOptions): Promise<string> {
    return (await this.stage(repo, options)).durable;
  }

  /** Staged and written locally; pushed to the forge with the next batch (flush pushes now). */
  async stage(repo: string, options: CommitOptions): Promise<Staged> {
    const staged = await this.local.stage(repo, options);
    this.schedulePush(repo);
    return staged;
  }

  /**
   * Pushes after the batch delay. A push that fails (the forge unreachable,
   * refused too often) is tried again on its own, waiting longer each time
   * (to 30 s): the last commits of a run must reach the forge even when no
   * commit follows them.
   */
  private schedulePush(repo: string, delayMs = this.options.batchMs ?? 200): void {
    if (this.timers.has(repo)) return;
    const timer = setTimeout(() => {
      this.timers.delete(repo);
      this.flush(repo).then(
        () => this.failures.delete(repo),
        (err: Error) => {
          const failures = (this.failures.get(repo) ?? 0) + 1;
          this.failures.set(repo, failures);
          const retryInMs = Math.min(30_000, 500 * 2 ** (failures - 1));
          this.options.log.error({ repo, err: err.message, retryInMs }, 'push failed; trying again');
          if (!this.closed) this.schedulePush(repo, retryInMs);
        },
      );
    }, delayMs);
    this.timers.set(repo, timer);
  }

  /** Pushes now, once what is staged is durable (one push at a time per repository). */
  async flush(repo: string): Promise<void> {
    await this.local.flush(repo);
    const previous = this.pushing.get(repo) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.push(repo));
    this.pushing.set(repo, next);
    return next;
  }

  private async push(repo: string): Promise<void> {
    const attempts = this.options.maxPushAttempts ?? 8;
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await git.push({
          fs: safeFs,
          http,
          gitdir: this.local.gitdir(repo),
          url: this.url(repo),
          ref: this.options.branch,
          remoteRef: this.options.branch,
          ...(this.onAuth ? { onAuth: this.onAuth } : {}),
        });
        if (r.ok) return;
        throw Object.assign(new Error(r.error ?? 'push refused'), { code: 'PushRejectedError' });
      } catch (err) {
        const e = err as Error & { code?: string };
        const rejected = e.code === 'PushRejectedError' || /not-fast-forward|fetch first|non-fast-forward|rejected/i.test(e.message);
        if (!rejected || attempt >= attempts) throw new Error(`push of ${repo} to ${this.url(repo)} failed: ${e.message}`);
        this.options.log.info({ repo, attempt }, 'push refused (someone else pushed first); fetching and replaying');
        await this.sync(repo);
        await new Promise((r) => setTimeout(r, Math.min(1000, 20 * 2 ** attempt) * Math.random()));
      }
    }
  }

  log(repo: string, depth?: number): Promise<{ oid: string; message: string }[]> {
    return this.local.log(repo, depth);
  }

  /** Pushes whatever is pending and stops the batch timers. */
  async close(): Promise<void> {
    this.closed = true;
    const repos = [...this.timers.keys()];
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const repo of repos) await this.flush(repo).catch((err: Error) => this.options.log.error({ repo, err: err.message }, 'final push failed'));
    await Promise.allSettled([...this.pushing.values()]);
    await this.local.close();
  }
}
