/**
 * Writes Git objects (blobs, trees, commits) as loose objects, the way git
 * does: hashed and deflated in memory, written to a temporary file and
 * renamed into place (safe-fs.ts, which names it `tmp_obj_*` as git does),
 * so that an object is either whole or absent. All the
 * objects of one commit are written at once: on this kind of disk a create
 * and a rename take about a millisecond each, and they overlap well.
 *
 * isomorphic-git stays the reader; this replaces only its writeBlob,
 * writeTree and writeCommit, which deflate through a web stream and write one
 * object at a time (about 8 objects per transition, some 40 transitions a
 * second here).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import { writeFileAtomic } from './safe-fs.js';

export type ObjectType = 'blob' | 'tree' | 'commit';

export interface TreeItem {
  name: string;
  /** As isomorphic-git reads it: `100644`, `100755`, `120000`, `040000`, `160000`. */
  mode: string;
  oid: string;
}

export interface Person {
  name: string;
  email: string;
  /** Seconds since the epoch. */
  timestamp: number;
}

export interface EncodedObject {
  oid: string;
  type: ObjectType;
  body: Buffer;
}

export function encodeObject(type: ObjectType, body: Buffer): EncodedObject {
  const oid = createHash('sha1').update(`${type} ${body.length}\0`).update(body).digest('hex');
  return { oid, type, body };
}

/** A tree in Git's order: by name, a folder sorting as if its name ended in `/`. */
export function encodeTree(items: TreeItem[]): EncodedObject {
  const keyed = items.map((item) => ({ item, key: Buffer.from(item.mode === '040000' || item.mode === '40000' ? `${item.name}/` : item.name) }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  const parts: Buffer[] = [];
  for (const { item } of keyed) {
    // Git writes folder modes without the leading zero.
    parts.push(Buffer.from(`${item.mode.replace(/^0+/, '')} ${item.name}\0`), Buffer.from(item.oid, 'hex'));
  }
  return encodeObject('tree', Buffer.concat(parts));
}

export function encodeCommit(commit: { tree: string; parents: string[]; author: Person; committer: Person; message: string }): EncodedObject {
  const who = (p: Person) => `${p.name} <${p.email}> ${p.timestamp} +0000`;
  const lines = [`tree ${commit.tree}`, ...commit.parents.map((p) => `parent ${p}`), `author ${who(commit.author)}`, `committer ${who(commit.committer)}`];
  return encodeObject('commit', Buffer.from(`${lines.join('\n')}\n\n${commit.message}`, 'utf8'));
}

/** Writes objects into `gitdir`, all at once; resolves when every one is in place. */
export class LooseObjectWriter {
  /** Fan-out folders known to exist. */
  private readonly folders = new Set<string>();

  constructor(private readonly gitdir: string) {}

  async write(objects: EncodedObject[]): Promise<void> {
    await Promise.all(objects.map((o) => this.writeOne(o)));
  }

  private async writeOne(object: EncodedObject): Promise<void> {
    const folder = path.join(this.gitdir, 'objects', object.oid.slice(0, 2));
    const file = path.join(folder, object.oid.slice(2));
    const data = deflateSync(Buffer.concat([Buffer.from(`${object.type} ${object.body.length}\0`), object.body]));
    if (!this.folders.has(folder)) {
      await fs.promises.mkdir(folder, { recursive: true });
      this.folders.add(folder);
    }
    try {
      // Over an existing copy of the same object, the rename changes nothing a reader could see.
      await writeFileAtomic(file, data);
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') this.folders.delete(folder); // removed under us (git prune): made again next time
      throw err;
    }
  }
}
