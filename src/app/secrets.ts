/**
 * Secrets (tokens, the webhook secret) never go into a repository, a commit
 * message or a log line. Task output may still print one — a task can read a
 * file it should not, or a user can paste one into a command — so whatever
 * gitjobs writes to tracking and done, and every log line, is masked.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Basis, ChangedFile, CommitOptions, GitStore, Staged, TreeEntry } from '../core/ports.js';

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

export { urlPassword as amqpPassword } from '../core/url-credentials.js';

export { MASK, SecretMasker, MaskedStream } from '../core/masking.js';
import { SecretMasker } from '../core/masking.js';
import { urlPassword } from '../core/url-credentials.js';

/** What an installation keeps secret, in one list: masked in its logs, its commits and its live output. */
export interface InstallationSecrets {
  webhookSecret?: string | undefined;
  apiToken?: string | undefined;
  forgeToken?: string | undefined;
  amqpUrl?: string | undefined;
}

export function installationMasker(secrets: InstallationSecrets): SecretMasker {
  return new SecretMasker([secrets.webhookSecret, secrets.apiToken, secrets.forgeToken, secrets.amqpUrl === undefined ? undefined : urlPassword(secrets.amqpUrl)]);
}

/** A GitStore whose commits to the given repositories are masked. */
export class MaskingGitStore implements GitStore {
  readonly readFiles?: GitStore['readFiles'];

  constructor(
    private readonly inner: GitStore,
    private readonly masker: SecretMasker,
    private readonly repos: ReadonlySet<string>,
  ) {
    if (inner.readFiles) this.readFiles = (repo, commit, paths) => inner.readFiles!(repo, commit, paths);
  }

  private masked(repo: string, options: CommitOptions): CommitOptions {
    if (!this.repos.has(repo) || this.masker.empty) return options;
    return {
      ...options,
      message: this.masker.mask(options.message),
      changes: options.changes.map((c) => ({
        path: c.path,
        content: c.content === null ? null : typeof c.content === 'string' ? this.masker.mask(c.content) : this.masker.maskBytes(c.content),
      })),
    };
  }

  commit(repo: string, options: CommitOptions): Promise<string> {
    return this.inner.commit(repo, this.masked(repo, options));
  }
  stage(repo: string, options: CommitOptions): Promise<Staged> {
    return this.inner.stage(repo, this.masked(repo, options));
  }
  head(repo: string): Promise<string | undefined> {
    return this.inner.head(repo);
  }
  basis(repo: string): Promise<Basis> {
    return this.inner.basis(repo);
  }
  readFile(repo: string, commit: string, path: string, options?: { maxBytes?: number }): Promise<string | undefined> {
    return this.inner.readFile(repo, commit, path, options);
  }
  readBytes(repo: string, commit: string, path: string, maxBytes?: number): Promise<Buffer | undefined> {
    return this.inner.readBytes(repo, commit, path, maxBytes);
  }
  fileSize(repo: string, commit: string, path: string): Promise<number | undefined> {
    return this.inner.fileSize(repo, commit, path);
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
