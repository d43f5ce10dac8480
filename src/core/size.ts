/**
 * Sizes in bytes, as project files, flags and environment variables write
 * them: `512`, `2k`, `1.5m`, `64MiB`, `1g` (any case, `b`, `kb`, `kib`…,
 * spaces around), or a number of bytes. Units are powers of 1024.
 */
const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** A positive whole number of bytes, or undefined when `value` is not a size. */
export function parseSize(value: string | number): number | undefined {
  let n: number;
  if (typeof value === 'number') {
    n = Math.floor(value);
  } else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
    const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
    if (!m || unit === undefined) return undefined;
    n = Math.floor(Number(m[1]) * unit);
  }
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}
