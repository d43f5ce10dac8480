/**
 * A tree the writer keeps in memory and changes in place: each entry's
 * encoded bytes are made once, and the order (git's: by name as bytes, a
 * folder as if its name ended in `/`) is worked out again only when a name
 * comes or goes. Writing the tree is then a copy and a hash; most
 * transitions change an entry that exists.
 */
import { encodeObject, isTreeMode, type EncodedObject, type TreeItem } from './objects.js';

interface Entry {
  item: TreeItem;
  bytes: Buffer;
}

function sortKey(item: TreeItem): Buffer {
  return Buffer.from(isTreeMode(item.mode) ? `${item.name}/` : item.name);
}

export class Folder {
  private readonly entries = new Map<string, Entry>();
  private order: Entry[] | undefined;

  constructor(items: Iterable<TreeItem> = []) {
    for (const item of items) this.entries.set(item.name, { item, bytes: entryBytes(item) });
  }

  get size(): number {
    return this.entries.size;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  get(name: string): TreeItem | undefined {
    return this.entries.get(name)?.item;
  }

  set(item: TreeItem): void {
    const known = this.entries.get(item.name);
    if (known && known.item.oid === item.oid && known.item.mode === item.mode) return;
    // A file that becomes a folder (or back) sorts elsewhere.
    if (!known || isTreeMode(known.item.mode) !== isTreeMode(item.mode)) this.order = undefined;
    const entry = { item, bytes: entryBytes(item) };
    this.entries.set(item.name, entry);
    if (known && this.order) this.order[this.order.indexOf(known)] = entry;
  }

  delete(name: string): void {
    if (this.entries.delete(name)) this.order = undefined;
  }

  items(): TreeItem[] {
    return [...this.entries.values()].map((e) => e.item);
  }

  encode(): EncodedObject {
    if (!this.order) {
      const keyed = [...this.entries.values()].map((entry) => ({ entry, key: sortKey(entry.item) }));
      keyed.sort((a, b) => Buffer.compare(a.key, b.key));
      this.order = keyed.map((k) => k.entry);
    }
    return encodeObject('tree', Buffer.concat(this.order.map((e) => e.bytes)));
  }
}

/** `<mode> <name>\0<20-byte id>`, as a tree holds an entry (folder modes without their leading zero). */
function entryBytes(item: TreeItem): Buffer {
  const head = `${item.mode.replace(/^0+/, '')} ${item.name}\0`;
  const buf = Buffer.allocUnsafe(Buffer.byteLength(head) + 20);
  const n = buf.write(head, 0, 'utf8');
  buf.write(item.oid, n, 'hex');
  return buf;
}
