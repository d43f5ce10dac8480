/**
 * Where a worker gets its Dockerfile: the config repository, fetched over
 * Git at the commit the run was dispatched with, `workers/<name>/` exported
 * to a local folder once per (commit, name), with the folder's tree id
 * beside it (images are keyed by it: a commit that does not touch a worker
 * does not build it again).
 */
import fs from 'node:fs';
import path from 'node:path';
import { RemoteRepo } from '../adapters/git/remote-repo.js';
import type { WorkerSource } from '../core/ports.js';
import { processAlive } from '../adapters/process/alive.js';

export class ConfigSource {
  private readonly repos = new Map<string, RemoteRepo>();
  private readonly exports = new Map<string, Promise<WorkerSource>>();
  private cleaned = false;

  constructor(
    private readonly cacheDir: string,
    private readonly branch = 'main',
    /** GITJOBS_API_TOKEN, for a built-in host that mirrors a forge and so guards reads too. */
    private readonly token?: string,
  ) {}

  worker(url: string, commit: string, name: string): Promise<WorkerSource> {
    const key = `${url}\0${commit}\0${name}`;
    let pending = this.exports.get(key);
    if (!pending) {
      pending = this.export(url, commit, name);
      this.exports.set(key, pending);
      pending.catch(() => this.exports.delete(key));
    }
    return pending;
  }

  private reposDir(): string {
    const root = path.join(this.cacheDir, 'repos');
    if (!this.cleaned) {
      this.cleaned = true;
      // Mirrors of processes that are gone.
      for (const entry of fs.existsSync(root) ? fs.readdirSync(root) : []) {
        const pid = Number(entry);
        if (!Number.isInteger(pid) || pid === process.pid || processAlive(pid)) continue;
        fs.rmSync(path.join(root, entry), { recursive: true, force: true });
      }
    }
    return path.join(root, String(process.pid));
  }

  private async export(url: string, commit: string, name: string): Promise<WorkerSource> {
    const dir = path.join(this.cacheDir, 'workers', `${name}-${commit.slice(0, 12)}`);
    const treeFile = `${dir}.tree`;
    if (fs.existsSync(dir) && fs.existsSync(treeFile)) return { name, commit, dir, tree: fs.readFileSync(treeFile, 'utf8').trim() };
    let repo = this.repos.get(url);
    // Each process fetches into mirrors of its own: two processes rewriting one repository's config race.
    if (!repo) this.repos.set(url, (repo = new RemoteRepo(url, this.branch, this.reposDir(), this.token)));
    if (!(await repo.hasCommit(commit))) await repo.fetch();
    if (!(await repo.hasCommit(commit))) throw new Error(`config commit ${commit.slice(0, 7)} is not on ${url} (${this.branch})`);
    const tree = await repo.treeId(commit, `workers/${name}`).catch(() => undefined);
    if (!fs.existsSync(dir)) await repo.exportDir(commit, `workers/${name}`, dir);
    if (!tree) return { name, commit, dir };
    fs.writeFileSync(treeFile, `${tree}\n`);
    return { name, commit, dir, tree };
  }
}

