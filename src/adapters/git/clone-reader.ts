/**
 * A plain Git clone (bare, or a working clone's `.git`), read with git's
 * own `cat-file`: what `gitjobs verify` checks is what anyone's clone holds,
 * read by the stock git, not by gitjobs' own store.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TreeSource } from '../../core/run-reader.js';
import { CatFile } from './cat-file.js';
import { parseTree } from './objects.js';

const run = promisify(execFile);

export class CloneReader implements TreeSource {
  readonly gitdir: string;
  private readonly cat: CatFile;

  constructor(dir: string) {
    this.gitdir = fs.existsSync(path.join(dir, '.git')) ? path.join(dir, '.git') : dir;
    this.cat = new CatFile(this.gitdir);
  }

  /** The commit HEAD points at, or undefined in an empty repository. */
  async head(): Promise<string | undefined> {
    return (await this.cat.info('HEAD'))?.oid;
  }

  async readFile(commit: string, file: string): Promise<string | undefined> {
    const o = await this.cat.contents(`${commit}:${file}`);
    return o?.type === 'blob' ? o.data.toString('utf8') : undefined;
  }

  async listDir(commit: string, dir: string): Promise<string[]> {
    const o = await this.cat.contents(dir ? `${commit}:${dir}` : `${commit}^{tree}`);
    return o?.type === 'tree' ? parseTree(o.data).map((e) => e.name) : [];
  }

  /** The blob id of a file at a commit. */
  async blobId(commit: string, file: string): Promise<string | undefined> {
    const o = await this.cat.info(`${commit}:${file}`);
    return o?.type === 'blob' ? o.oid : undefined;
  }

  async hasCommit(sha: string): Promise<boolean> {
    return (await this.cat.info(`${sha}^{commit}`)) !== undefined;
  }

  /** Every commit's subject from HEAD back, oldest first. */
  async subjects(): Promise<string[]> {
    const { stdout } = await run('git', ['--git-dir', this.gitdir, 'log', '--reverse', '--format=%s', 'HEAD'], { maxBuffer: 1 << 30 });
    return stdout.split('\n').filter(Boolean);
  }

  close(): void {
    this.cat.close();
  }
}
