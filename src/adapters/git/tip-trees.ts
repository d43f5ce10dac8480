/**
 * The folders of a branch's head as the writer changes them: each read once
 * (from the objects still in memory, or from disk) and then changed in
 * place, so that a commit rewrites only the trees along its paths.
 */
import { Folder } from './folder.js';
import { isTreeMode, parseCommit, parseTree, type EncodedObject } from './objects.js';

export interface TreeObjects {
  /** An object still in memory, or on disk. */
  read(oid: string): Promise<EncodedObject | undefined>;
}

/** Folders kept in memory before the cache is dropped (and read again as needed). */
const DIR_CACHE = 50_000;

export class TipTrees {
  private readonly dirs = new Map<string, Folder>();

  constructor(
    private readonly repo: string,
    private readonly objects: TreeObjects,
  ) {}

  private async readDir(oid: string): Promise<Folder> {
    const o = await this.objects.read(oid);
    if (!o) throw new Error(`${this.repo}: tree ${oid} is missing`);
    return new Folder(parseTree(o.body));
  }

  /** The folder at `dirPath` of the commit `tip`, read once and then kept. */
  async dir(tip: string | undefined, dirPath: string): Promise<Folder> {
    const cached = this.dirs.get(dirPath);
    if (cached) return cached;
    let entries = new Folder();
    if (dirPath === '') {
      if (tip) {
        const o = await this.objects.read(tip);
        if (!o) throw new Error(`${this.repo}: commit ${tip} is missing`);
        entries = await this.readDir(parseCommit(o.body).tree);
      }
    } else {
      const e = (await this.dir(tip, parentOf(dirPath))).get(baseOf(dirPath));
      if (e && isTreeMode(e.mode)) entries = await this.readDir(e.oid);
    }
    // Another step may have read it meanwhile: keep the first, which may have been changed since.
    const again = this.dirs.get(dirPath);
    if (again) return again;
    this.dirs.set(dirPath, entries);
    return entries;
  }

  /** A folder read before (inside the part of a commit that does not wait). */
  must(dirPath: string): Folder {
    const d = this.dirs.get(dirPath);
    if (!d) throw new Error(`${this.repo}: folder ${dirPath || '/'} was not read before the commit was built`);
    return d;
  }

  forget(dirPath: string): void {
    this.dirs.delete(dirPath);
  }

  clear(): void {
    this.dirs.clear();
  }

  /** Lets the cache go when it has grown large: what is needed is read again. */
  trim(): void {
    if (this.dirs.size > DIR_CACHE) this.dirs.clear();
  }
}

export function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

export function baseOf(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}
