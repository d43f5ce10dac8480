const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration such as `500ms`, `60s`, `5m`, `1h` or a bare number of
 * seconds. Returns milliseconds, or undefined when the text is not a duration.
 */
export function parseDuration(value: string | number): number | undefined {
  let ms: number;
  if (typeof value === 'number') ms = value * 1000;
  else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
    if (!m) return undefined;
    ms = Number(m[1]) * UNITS[m[2] ?? 's']!;
  }
  // Under a millisecond rounds to nothing: not a duration.
  return Number.isFinite(ms) && Math.round(ms) >= 1 ? Math.round(ms) : undefined;
}

/** `0.41s`, `12.3s`, `2m05s`: short and human, for commit subjects. */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
