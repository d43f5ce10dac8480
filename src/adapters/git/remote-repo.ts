/**
 * A repository reached over HTTP(S) with isomorphic-git, mirrored into a
 * local bare cache folder: workers fetch the config repository this way, and
 * the CLI reads tracking and done.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import git from 'isomorphic-git';
import { safeFs } from './safe-fs.js';
import http from 'isomorphic-git/http/node';

export class RemoteRepo {
  readonly gitdir: string;
  private readonly cache = {};
  private fetching: Promise<string> | undefined;

  constructor(
    readonly url: string,
    readonly branch = 'main',
    cacheRoot = path.join(os.tmpdir(), 'gitjobs-cache'),
    /** Sent as HTTP Basic password (the built-in host of a gitjobs with a token asks for it). */
    private readonly token?: string,
  ) {
    const key = createHash('sha1').update(url).digest('hex').slice(0, 12);
    const name = url.replace(/\/+$/, '').split('/').pop()!.replace(/\.git$/, '').replace(/[^A-Za-z0-9._-]/g, '_');
    this.gitdir = path.join(cacheRoot, `${name}-${key}.git`);
  }

  /** Fetches the branch; returns its head commit. Concurrent calls share one fetch. */
  fetch(): Promise<string> {
    if (!this.fetching) {
      this.fetching = this.doFetch().finally(() => (this.fetching = undefined));
    }
    return this.fetching;
  }

  private async doFetch(): Promise<string> {
    if (!fs.existsSync(path.join(this.gitdir, 'HEAD'))) {
      fs.mkdirSync(this.gitdir, { recursive: true });
      await git.init({ fs: safeFs, gitdir: this.gitdir, bare: true, defaultBranch: this.branch });
    }
    // Every time: another process sharing this cache may have created the folder a moment ago.
    await git.addRemote({ fs: safeFs, gitdir: this.gitdir, remote: 'origin', url: this.url, force: true });
    try {
      const headers: Record<string, string> = this.token ? { authorization: `Basic ${Buffer.from(`gitjobs:${this.token}`).toString('base64')}` } : {};
      const r = await git.fetch({ fs: safeFs, http, gitdir: this.gitdir, remote: 'origin', ref: this.branch, singleBranch: true, tags: false, headers });
      if (!r.fetchHead) throw new Error(`branch ${this.branch} not found`);
      return r.fetchHead;
    } catch (err) {
      throw new Error(`cannot fetch ${this.url}: ${(err as Error).message}`);
    }
  }

  async hasCommit(oid: string): Promise<boolean> {
    try {
      await git.readCommit({ fs: safeFs, gitdir: this.gitdir, oid, cache: this.cache });
      return true;
    } catch {
      return false;
    }
  }

  async readFile(commit: string, filepath: string): Promise<string | undefined> {
    try {
      const { blob } = await git.readBlob({ fs: safeFs, gitdir: this.gitdir, oid: commit, filepath, cache: this.cache });
      return Buffer.from(blob).toString('utf8');
    } catch (err) {
      if ((err as { code?: string }).code === 'NotFoundError') return undefined;
      throw err;
    }
  }

  async listDir(commit: string, filepath: string): Promise<string[]> {
    try {
      const { tree } = await git.readTree({ fs: safeFs, gitdir: this.gitdir, oid: commit, filepath, cache: this.cache });
      return tree.map((e) => e.path);
    } catch (err) {
      if ((err as { code?: string }).code === 'NotFoundError') return [];
      throw err;
    }
  }

  /** Writes the folder `filepath` at `commit` to `dest` (which must not exist yet). */
  /** The tree id of a folder at a commit. */
  async treeId(commit: string, filepath: string): Promise<string> {
    return (await git.readTree({ fs: safeFs, gitdir: this.gitdir, oid: commit, filepath, cache: this.cache })).oid;
  }

  async exportDir(commit: string, filepath: string, dest: string): Promise<number> {
    const tmp = `${dest}.tmp-${process.pid}-${Date.now()}`;
    let count = 0;
    const walk = async (treePath: string, out: string) => {
      fs.mkdirSync(out, { recursive: true });
      const { tree } = await git.readTree({ fs: safeFs, gitdir: this.gitdir, oid: commit, filepath: treePath, cache: this.cache });
      for (const e of tree) {
        const target = path.join(out, e.path);
        if (e.type === 'tree') await walk(`${treePath}/${e.path}`, target);
        else if (e.type === 'blob') {
          const { blob } = await git.readBlob({ fs: safeFs, gitdir: this.gitdir, oid: e.oid, cache: this.cache });
          fs.writeFileSync(target, blob, { mode: e.mode === '100755' ? 0o755 : 0o644 });
          count++;
        }
      }
    };
    try {
      await walk(filepath, tmp);
      fs.renameSync(tmp, dest);
    } catch (err) {
      fs.rmSync(tmp, { recursive: true, force: true });
      if ((err as { code?: string }).code === 'NotFoundError') throw new Error(`${filepath}/ does not exist in ${this.url} at ${commit.slice(0, 7)}`);
      if (fs.existsSync(dest)) return count; // another export won the race
      throw err;
    }
    return count;
  }
}
