/**
 * Writes objects as one pack file with its version-2 index, as git's
 * `index-pack` would leave them: `pack-<checksum>.pack` and `.idx` in
 * `objects/pack/`. Each is written to a temporary file, fsynced, and renamed
 * into place, the index last (git sees a pack only once its index is there),
 * then the folder is fsynced: a pack is either whole and visible, or absent.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { prefixSuffixDelta } from './delta.js';
import type { EncodedObject, ObjectType } from './objects.js';

const TYPE_CODE: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3, tag: 4 };
const OFS_DELTA = 6;
/** Deltas on deltas at most this deep: a reader resolves the whole chain (git's default is 50). */
const MAX_CHAIN = 16;

export interface PackObject extends EncodedObject {
  /** An earlier object of the same pack that this one may be stored as a delta against. */
  deltaBase?: string;
}

/**
 * The pack being written, as one buffer that grows by doubling: entries are
 * written in place, with no buffer of their own (small buffers by the
 * hundred thousand are what a busy writer would otherwise spend its time
 * allocating and collecting).
 */
class PackBytes {
  buf: Buffer;
  length = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, capacity));
  }

  reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(bigger, 0, 0, this.length);
    this.buf = bigger;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.length++] = b;
  }

  bytes(data: Buffer): void {
    this.reserve(data.length);
    this.length += data.copy(this.buf, this.length);
  }

  /** An entry's type and size: 3 bits of type, then the size 4 bits and 7 bits at a time. */
  entryHeader(type: number, size: number): void {
    let c = (type << 4) | (size & 0x0f);
    let rest = Math.floor(size / 16);
    while (rest > 0) {
      this.byte(c | 0x80);
      c = rest & 0x7f;
      rest = Math.floor(rest / 128);
    }
    this.byte(c);
  }

  /** The distance back to a delta's base, in git's offset encoding (most significant group first). */
  ofs(distance: number): void {
    const groups = [distance & 0x7f];
    for (let n = Math.floor(distance / 128); n > 0; n = Math.floor(n / 128)) {
      n -= 1;
      groups.push(0x80 | (n & 0x7f));
    }
    for (let i = groups.length - 1; i >= 0; i--) this.byte(groups[i]!);
  }

  /**
   * A zlib stream of stored (uncompressed) blocks, written by hand: what
   * trees and deltas are (mostly SHA-1 bytes, which do not compress) costs
   * a copy, not a compressor set up and torn down for each object.
   */
  storedZlib(data: Buffer): void {
    const blocks = Math.max(1, Math.ceil(data.length / 65535));
    this.reserve(2 + blocks * 5 + data.length + 4);
    const out = this.buf;
    let p = this.length;
    out[p++] = 0x78;
    out[p++] = 0x01;
    for (let i = 0; i < blocks; i++) {
      const start = i * 65535;
      const n = Math.min(65535, data.length - start);
      out[p] = i === blocks - 1 ? 1 : 0;
      out.writeUInt16LE(n, p + 1);
      out.writeUInt16LE(~n & 0xffff, p + 3);
      p += 5 + data.copy(out, p + 5, start, start + n);
    }
    this.length = out.writeUInt32BE(adler32(data), p);
  }
}

/** Adler-32, as zlib streams end with it (sums taken modulo 65521 every 5552 bytes, as zlib does). */
export function adler32(data: Buffer): number {
  let a = 1;
  let b = 0;
  for (let i = 0; i < data.length; ) {
    const end = Math.min(data.length, i + 5552);
    for (; i < end; i++) {
      a += data[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** Objects smaller than this are stored: setting a compressor up costs more than the bytes it saves. */
const COMPRESS_FROM = 128;

/**
 * Deflate for one small object, its window and hash table sized to it:
 * zlib's defaults (a 32 KiB window, 64 KiB of hash heads) are set up and
 * cleared for every stream, which for a few hundred bytes costs more than
 * compressing them, and the compression is the same.
 */
function deflateSmall(data: Buffer, level: number): Buffer {
  const bits = Math.min(15, Math.max(9, Math.ceil(Math.log2(data.length + 262))));
  return deflateSync(data, { level, windowBits: bits, memLevel: Math.max(1, Math.min(8, bits - 7)) });
}

export interface EncodedPack {
  pack: Buffer;
  idx: Buffer;
  /** The pack's checksum, which names it. */
  name: string;
}

interface Written {
  offset: number;
  body: Buffer;
  /** How many deltas deep this entry is (0 when stored whole). */
  depth: number;
}

interface IndexEntry {
  oid: string;
  offset: number;
  crc: number;
}

export function encodePack(objects: PackObject[], level = 1): EncodedPack {
  let estimate = 32;
  for (const o of objects) estimate += o.body.length + 16;
  const out = new PackBytes(estimate);
  out.reserve(12);
  out.buf.write('PACK', 0, 'latin1');
  out.buf.writeUInt32BE(2, 4);
  out.buf.writeUInt32BE(objects.length, 8);
  out.length = 12;
  const written = new Map<string, Written>();
  const index: IndexEntry[] = new Array(objects.length);
  objects.forEach((o, i) => {
    const offset = out.length;
    const base = o.deltaBase === undefined ? undefined : written.get(o.deltaBase);
    const delta = base && base.depth < MAX_CHAIN ? prefixSuffixDelta(base.body, o.body) : undefined;
    if (delta) {
      out.entryHeader(OFS_DELTA, delta.length);
      out.ofs(offset - base!.offset);
      out.storedZlib(delta);
    } else {
      out.entryHeader(TYPE_CODE[o.type], o.body.length);
      if (o.type === 'tree' || o.body.length < COMPRESS_FROM) out.storedZlib(o.body);
      else out.bytes(deflateSmall(o.body, level));
    }
    index[i] = { oid: o.oid, offset, crc: crc32(out.buf.subarray(offset, out.length)) };
    written.set(o.oid, { offset, body: o.body, depth: delta ? base!.depth + 1 : 0 });
  });
  const checksum = createHash('sha1').update(out.buf.subarray(0, out.length)).digest();
  out.bytes(checksum);
  return { pack: out.buf.subarray(0, out.length), idx: encodeIndex(index, checksum), name: checksum.toString('hex') };
}

function encodeIndex(entries: IndexEntry[], packChecksum: Buffer): Buffer {
  // Lower-case hex sorts as the bytes it spells.
  const sorted = [...entries].sort((a, b) => (a.oid < b.oid ? -1 : a.oid > b.oid ? 1 : 0));
  const n = sorted.length;
  const large = sorted.filter((e) => e.offset >= 0x80000000);
  const buf = Buffer.alloc(8 + 256 * 4 + n * 20 + n * 4 + n * 4 + large.length * 8 + 40);
  buf.writeUInt32BE(0xff744f63, 0);
  buf.writeUInt32BE(2, 4);
  let p = 8;
  let count = 0;
  for (let byte = 0; byte < 256; byte++) {
    while (count < n && parseInt(sorted[count]!.oid.slice(0, 2), 16) <= byte) count++;
    buf.writeUInt32BE(count, p);
    p += 4;
  }
  for (const e of sorted) p += buf.write(e.oid, p, 'hex');
  for (const e of sorted) p = buf.writeUInt32BE(e.crc >>> 0, p);
  let nextLarge = 0;
  for (const e of sorted) p = buf.writeUInt32BE(e.offset >= 0x80000000 ? (0x80000000 | nextLarge++) >>> 0 : e.offset, p);
  for (const e of large) {
    buf.writeUInt32BE(Math.floor(e.offset / 2 ** 32), p);
    buf.writeUInt32BE(e.offset >>> 0, p + 4);
    p += 8;
  }
  p += packChecksum.copy(buf, p);
  createHash('sha1').update(buf.subarray(0, p)).digest().copy(buf, p);
  return buf;
}

async function writeDurably(dir: string, name: string, data: Buffer): Promise<void> {
  // git's own name for a pack being written: `git prune` (and gitjobs at start) clean up what a crash leaves.
  const tmp = path.join(dir, `tmp_pack_${process.pid}_${Math.random().toString(36).slice(2, 10)}`);
  const handle = await fs.promises.open(tmp, 'w', 0o444);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.promises.rename(tmp, path.join(dir, name));
}

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes the objects as one pack into `gitdir`, durably; returns the pack's name. */
export async function writePack(gitdir: string, objects: PackObject[]): Promise<string> {
  const dir = path.join(gitdir, 'objects', 'pack');
  await fs.promises.mkdir(dir, { recursive: true });
  const { pack, idx, name } = encodePack(objects);
  await writeDurably(dir, `pack-${name}.pack`, pack);
  await writeDurably(dir, `pack-${name}.idx`, idx);
  await fsyncDir(dir);
  return name;
}

/** Removes the temporary pack files of writers that died (their pid is not alive), as `git prune` would. */
export async function removeStalePackTemps(gitdir: string, alive: (pid: number) => boolean): Promise<number> {
  const dir = path.join(gitdir, 'objects', 'pack');
  let removed = 0;
  for (const name of await fs.promises.readdir(dir).catch(() => [] as string[])) {
    const m = /^tmp_pack_(\d+)_/.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    await fs.promises.unlink(path.join(dir, name)).catch(() => undefined);
    removed++;
  }
  return removed;
}
