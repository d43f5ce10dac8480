/**
 * Secrets (tokens, the webhook secret) never go into a repository, a commit
 * message or a log line. Task output may still print one — a task can read a
 * file it should not, or a user can paste one into a command — so whatever
 * gitjobs writes to tracking and done, and every log line, is masked.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ChangedFile, CommitOptions, GitStore, TreeEntry } from '../core/ports.js';

/** The webhook secret kept in the home folder (mode 600): made on first use, read afterwards. */
export function ensureWebhookSecret(home: string): { secret: string; file: string; created: boolean } {
  const file = path.join(home, 'webhook-secret');
  if (fs.existsSync(file)) {
    const secret = fs.readFileSync(file, 'utf8').trim();
    if (secret) return { secret, file, created: false };
  }
  fs.mkdirSync(home, { recursive: true });
  const secret = randomBytes(32).toString('hex');
  fs.writeFileSync(file, secret + '\n', { mode: 0o600 });
  return { secret, file, created: true };
}

/** The password of an AMQP URL, if any. */
export function amqpPassword(url: string): string | undefined {
  const m = /\/\/[^:/@]+:([^@]*)@/.exec(url);
  return m?.[1] ? decodeURIComponent(m[1]) : undefined;
}

export const MASK = '***';

export class SecretMasker {
  private readonly secrets: string[];

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

/** A GitStore whose commits to the given repositories are masked. */
export class MaskingGitStore implements GitStore {
  constructor(
    private readonly inner: GitStore,
    private readonly masker: SecretMasker,
    private readonly repos: ReadonlySet<string>,
  ) {}

  commit(repo: string, options: CommitOptions): Promise<string> {
    if (!this.repos.has(repo) || this.masker.empty) return this.inner.commit(repo, options);
    return this.inner.commit(repo, {
      ...options,
      message: this.masker.mask(options.message),
      changes: options.changes.map((c) => ({
        path: c.path,
        content: c.content === null ? null : typeof c.content === 'string' ? this.masker.mask(c.content) : this.masker.maskBytes(c.content),
      })),
    });
  }

  head(repo: string): Promise<string | undefined> {
    return this.inner.head(repo);
  }
  readFile(repo: string, commit: string, path: string): Promise<string | undefined> {
    return this.inner.readFile(repo, commit, path);
  }
  listDir(repo: string, commit: string, path: string): Promise<string[]> {
    return this.inner.listDir(repo, commit, path);
  }
  listEntries(repo: string, commit: string, path: string): Promise<TreeEntry[]> {
    return this.inner.listEntries(repo, commit, path);
  }
  history(repo: string, head: string): AsyncIterable<{ oid: string; message: string }> {
    return this.inner.history(repo, head);
  }
  changedFiles(repo: string, before: string, after: string): Promise<ChangedFile[]> {
    return this.inner.changedFiles(repo, before, after);
  }
  isAncestor(repo: string, ancestor: string, commit: string): Promise<boolean> {
    return this.inner.isAncestor(repo, ancestor, commit);
  }
  ensureCommit(repo: string, commit: string): Promise<void> {
    return this.inner.ensureCommit(repo, commit);
  }
  flush(repo: string): Promise<void> {
    return this.inner.flush(repo);
  }
  log(repo: string, depth?: number): Promise<{ oid: string; message: string }[]> {
    return this.inner.log(repo, depth);
  }
}
