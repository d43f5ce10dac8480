/**
 * Git's delta format, for the one case the writer has: a new version of a
 * tree or file that differs from the previous one in one stretch. The delta
 * copies the common head and tail from the base and inserts the middle; a
 * tree rewritten for one changed entry shrinks to a few dozen bytes.
 */

/** Little-endian base-128, as delta headers store sizes. */
function varint(n: number, out: number[]): void {
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
}

/** Copy `size` bytes of the base from `offset`, in pieces of at most 64 KiB as git writes them. */
function copy(offset: number, size: number, out: number[]): void {
  while (size > 0) {
    const n = Math.min(size, 0x10000);
    let cmd = 0x80;
    const args: number[] = [];
    for (let i = 0; i < 4; i++) {
      const b = Math.floor(offset / 2 ** (8 * i)) & 0xff;
      if (b) {
        cmd |= 1 << i;
        args.push(b);
      }
    }
    // A size of 0x10000 is written as no size bytes at all.
    if (n !== 0x10000) {
      for (let i = 0; i < 3; i++) {
        const b = (n >> (8 * i)) & 0xff;
        if (b) {
          cmd |= 0x10 << i;
          args.push(b);
        }
      }
    }
    out.push(cmd, ...args);
    offset += n;
    size -= n;
  }
}

/**
 * A delta turning `base` into `target`, or undefined when it would not save
 * at least half of the target (then the object is stored whole).
 */
export function prefixSuffixDelta(base: Buffer, target: Buffer): Buffer | undefined {
  const max = Math.min(base.length, target.length);
  let head = 0;
  while (head < max && base[head] === target[head]) head++;
  let tail = 0;
  while (tail < max - head && base[base.length - 1 - tail] === target[target.length - 1 - tail]) tail++;
  const middle = target.length - head - tail;
  if (middle + 32 > target.length / 2) return undefined;
  const out: number[] = [];
  varint(base.length, out);
  varint(target.length, out);
  if (head) copy(0, head, out);
  for (let i = head; i < head + middle; i += 127) {
    const n = Math.min(127, head + middle - i);
    out.push(n);
    for (let j = 0; j < n; j++) out.push(target[i + j]!);
  }
  if (tail) copy(base.length - tail, tail, out);
  return Buffer.from(out);
}
