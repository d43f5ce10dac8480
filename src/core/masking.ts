/**
 * Secrets (tokens, the webhook secret) are masked wherever gitjobs writes
 * what a task printed: tracking, done, logs and live output.
 */
export const MASK = '***';

export class SecretMasker {
  readonly secrets: string[];

  constructor(secrets: (string | undefined)[]) {
    // Longest first, so that a secret containing another is masked whole; short strings are not secrets.
    this.secrets = [...new Set(secrets.filter((s): s is string => typeof s === 'string' && s.length >= 8))].sort((a, b) => b.length - a.length);
  }

  get empty(): boolean {
    return this.secrets.length === 0;
  }

  mask(text: string): string {
    let out = text;
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join(MASK);
    return out;
  }

  maskBytes(bytes: Uint8Array): Uint8Array {
    const buf = Buffer.from(bytes);
    if (!this.secrets.some((s) => buf.includes(s))) return bytes;
    return Buffer.from(this.mask(buf.toString('utf8')), 'utf8');
  }
}

/**
 * Masks text that comes in pieces (live output): a secret split across two
 * pieces is masked whole. The end of a piece that could begin a secret is
 * held back until the next piece (or the end) shows what it is.
 */
export class MaskedStream {
  private held = '';
  private readonly longest: number;

  constructor(private readonly masker: SecretMasker) {
    this.longest = masker.secrets[0]?.length ?? 0;
  }

  /** The masked text that can be shown now. */
  push(piece: string): string {
    if (this.masker.empty) return piece;
    const text = this.held + piece;
    const cut = this.partialStart(text);
    let out = '';
    let i = 0;
    while (i < cut) {
      // The next secret at or after i (the longest, where two start at one place).
      let at = -1;
      let found = '';
      for (const s of this.masker.secrets) {
        const k = text.indexOf(s, i);
        if (k >= 0 && (at < 0 || k < at)) {
          at = k;
          found = s;
        }
      }
      if (at < 0 || at >= cut) {
        out += text.slice(i, cut);
        i = cut;
        break;
      }
      out += text.slice(i, at) + MASK;
      i = at + found.length;
    }
    this.held = text.slice(i);
    return out;
  }

  /** What was held back, masked: the stream has ended. */
  end(): string {
    const rest = this.held;
    this.held = '';
    return this.masker.mask(rest);
  }

  /** Where the earliest end of `text` that is the unfinished start of some secret begins (text.length when none). */
  private partialStart(text: string): number {
    for (let q = Math.max(0, text.length - this.longest + 1); q < text.length; q++) {
      const tail = text.slice(q);
      if (this.masker.secrets.some((s) => s.length > tail.length && s.startsWith(tail))) return q;
    }
    return text.length;
  }
}
