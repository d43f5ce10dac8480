/**
 * `gitjobs init`: creates (or reuses) the four repositories on a forge,
 * pushes the `repos-template/` content to the empty ones, and registers the
 * push webhooks with a secret. Tokens come from the environment only.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import type { Settings } from '../../core/settings.js';

export interface ProvisionedRepo {
  name: string;
  cloneUrl: string;
  created: boolean;
}

export interface WebhookSpec {
  url: string;
  secret: string;
}

export interface Provisioner {
  readonly kind: string;
  ensureRepo(name: string, description: string): Promise<ProvisionedRepo>;
  ensureWebhook(repo: string, hook: WebhookSpec): Promise<'created' | 'updated'>;
  readonly gitAuth: { username: string; password: string };
}

const DESCRIPTIONS: Record<keyof Settings['repos'], string> = {
  todo: 'gitjobs: projects to run (push projects/*.json)',
  tracking: 'gitjobs: the audit log, one commit per task transition',
  done: 'gitjobs: results of finished runs',
  config: 'gitjobs: worker Dockerfiles (workers/<name>/Dockerfile)',
};

export interface ProvisionReport {
  repos: (ProvisionedRepo & { role: string; seeded: boolean; webhook?: 'created' | 'updated' })[];
}

export async function provision(options: {
  forge: Provisioner;
  settings: Settings;
  templateDir: string;
  /** Where the forge delivers pushes: gitjobs' public URL + /webhooks/<forge>. */
  webhookUrl: string;
  secret: string;
}): Promise<ProvisionReport> {
  const { forge, settings } = options;
  const report: ProvisionReport = { repos: [] };
  for (const role of Object.keys(settings.repos) as (keyof Settings['repos'])[]) {
    const name = settings.repos[role];
    const repo = await forge.ensureRepo(name, DESCRIPTIONS[role]);
    let seeded = false;
    // Whether the branch exists, as `git ls-remote` says: the API's own emptiness hints lag or round down.
    const refs = await git.listServerRefs({ http, url: repo.cloneUrl, prefix: `refs/heads/${settings.branch}`, onAuth: () => forge.gitAuth });
    if (!refs.some((r) => r.ref === `refs/heads/${settings.branch}`)) {
      await seed(repo.cloneUrl, path.join(options.templateDir, role), settings.branch, forge.gitAuth);
      seeded = true;
    }
    const entry: ProvisionReport['repos'][number] = { ...repo, role, seeded };
    // Only pushes to todo (new runs) and config (new images) concern gitjobs.
    if (role === 'todo' || role === 'config') entry.webhook = await forge.ensureWebhook(name, { url: options.webhookUrl, secret: options.secret });
    report.repos.push(entry);
  }
  return report;
}

/** Pushes the template folder as the first commit of an empty repository. */
async function seed(url: string, dir: string, branch: string, auth: { username: string; password: string }): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-seed-'));
  try {
    await git.init({ fs, dir: work, defaultBranch: branch });
    if (fs.existsSync(dir)) fs.cpSync(dir, work, { recursive: true });
    else fs.writeFileSync(path.join(work, 'README.md'), `# ${path.basename(dir)}\n`);
    await git.add({ fs, dir: work, filepath: '.' });
    const author = { name: 'gitjobs', email: 'gitjobs@localhost' };
    await git.commit({ fs, dir: work, message: `Initial repository from gitjobs repos-template/${path.basename(dir)}\n`, author });
    const r = await git.push({ fs, http, dir: work, url, ref: branch, remoteRef: branch, onAuth: () => auth });
    if (!r.ok) throw new Error(`pushing the template to ${url} failed: ${r.error}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** A commit status as both GitHub's and Gitea's APIs take it (descriptions are cut at their 140 characters). */
export function statusBody(status: import('../../core/ports.js').CommitStatus): { state: CommitStatusState; description: string; context: string; target_url?: string } {
  return { state: status.state, description: status.description.slice(0, 140), context: status.context, ...(status.targetUrl ? { target_url: status.targetUrl } : {}) };
}

type CommitStatusState = import('../../core/ports.js').CommitStatus['state'];
