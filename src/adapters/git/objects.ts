/**
 * Git's objects as bytes: blobs, trees and commits hashed and encoded in
 * memory the way git does (trees checked against `git mktree` byte for byte
 * in the tests), and trees and commits parsed back.
 */
import { gitObjectId } from '../../core/git-ids.js';

export type ObjectType = 'blob' | 'tree' | 'commit' | 'tag';

export interface TreeItem {
  name: string;
  /** As git prints it: `100644`, `100755`, `120000`, `40000` (or `040000`), `160000`. */
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

export function hashObject(type: ObjectType, body: Buffer): string {
  return gitObjectId(type, body);
}

export function encodeObject(type: ObjectType, body: Buffer): EncodedObject {
  return { oid: hashObject(type, body), type, body };
}

export const isTreeMode = (mode: string) => mode === '040000' || mode === '40000';

/** A tree in Git's order: by name as bytes, a folder sorting as if its name ended in `/`. */
export function encodeTree(items: TreeItem[]): EncodedObject {
  const keyed = items.map((item) => ({ item, key: Buffer.from(isTreeMode(item.mode) ? `${item.name}/` : item.name) }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  const parts: Buffer[] = [];
  for (const { item } of keyed) {
    // Git writes folder modes without the leading zero.
    parts.push(Buffer.from(`${item.mode.replace(/^0+/, '')} ${item.name}\0`), Buffer.from(item.oid, 'hex'));
  }
  return encodeObject('tree', Buffer.concat(parts));
}

export function parseTree(body: Buffer): TreeItem[] {
  const items: TreeItem[] = [];
  for (let i = 0; i < body.length; ) {
    const space = body.indexOf(0x20, i);
    const nul = body.indexOf(0, space);
    const mode = body.toString('latin1', i, space);
    items.push({ mode: mode === '40000' ? '040000' : mode, name: body.toString('utf8', space + 1, nul), oid: body.toString('hex', nul + 1, nul + 21) });
    i = nul + 21;
  }
  return items;
}

export function encodeCommit(commit: { tree: string; parents: string[]; author: Person; committer: Person; message: string }): EncodedObject {
  const who = (p: Person) => `${p.name} <${p.email}> ${p.timestamp} +0000`;
  const lines = [`tree ${commit.tree}`, ...commit.parents.map((p) => `parent ${p}`), `author ${who(commit.author)}`, `committer ${who(commit.committer)}`];
  return encodeObject('commit', Buffer.from(`${lines.join('\n')}\n\n${commit.message}`, 'utf8'));
}

export interface ParsedCommit {
  tree: string;
  parents: string[];
  message: string;
  /** Committer time, seconds since the epoch. */
  time: number;
}

export function parseCommit(body: Buffer): ParsedCommit {
  const text = body.toString('utf8');
  const end = text.indexOf('\n\n');
  const head = end < 0 ? text : text.slice(0, end);
  const parents: string[] = [];
  let tree = '';
  let time = 0;
  for (const line of head.split('\n')) {
    if (line.startsWith('tree ')) tree = line.slice(5);
    else if (line.startsWith('parent ')) parents.push(line.slice(7));
    else if (line.startsWith('committer ')) time = Number(/ (\d+) [+-]\d{4}$/.exec(line)?.[1] ?? 0);
  }
  return { tree, parents, message: end < 0 ? '' : text.slice(end + 2), time };
}
