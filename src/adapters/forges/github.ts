/**
 * GitHub through its REST API (@octokit/rest): provisioning of the four
 * repositories and their webhooks, and commit statuses.
 */
import { Octokit } from '@octokit/rest';
import type { CommitStatus, CommitStatuses, Forge } from '../../core/ports.js';
import { statusBody, type Provisioner, type ProvisionedRepo, type WebhookSpec } from './provision.js';

export interface GitHubOptions {
  token: string;
  owner: string;
  /** API root; GitHub Enterprise or a stand-in. */
  apiUrl?: string;
  /** Where clone URLs point (default https://github.com/OWNER). */
  gitBaseUrl?: string;
}

export class GitHubForge implements Forge, CommitStatuses, Provisioner {
  readonly kind = 'github';
  private readonly octokit: Octokit;

  constructor(private readonly options: GitHubOptions) {
    this.octokit = new Octokit({ auth: options.token, baseUrl: options.apiUrl ?? 'https://api.github.com', userAgent: 'gitjobs', log: { debug() {}, info() {}, warn() {}, error() {} } });
  }

  cloneUrl(repo: string): string {
    return `${(this.options.gitBaseUrl ?? `https://github.com/${this.options.owner}`).replace(/\/+$/, '')}/${repo}.git`;
  }

  /** The forge's own page for a commit. */
  commitUrl(repo: string, sha: string): string {
    return `${this.cloneUrl(repo).replace(/\.git$/, '')}/commit/${sha}`;
  }

  /** Git over HTTPS takes the token as password. */
  get gitAuth() {
    return { username: 'x-access-token', password: this.options.token };
  }

  async setStatus(repo: string, sha: string, status: CommitStatus): Promise<void> {
    await this.octokit.rest.repos.createCommitStatus({ owner: this.options.owner, repo, sha, ...statusBody(status) });
  }

  async ensureRepo(name: string, description: string): Promise<ProvisionedRepo> {
    const { owner } = this.options;
    try {
      const { data } = await this.octokit.rest.repos.get({ owner, repo: name });
      return { name, cloneUrl: data.clone_url, created: false };
    } catch (err) {
      if ((err as { status?: number }).status !== 404) throw err;
    }
    const { data: me } = await this.octokit.rest.users.getAuthenticated();
    const { data } =
      me.login === owner
        ? await this.octokit.rest.repos.createForAuthenticatedUser({ name, description, private: true, auto_init: false })
        : await this.octokit.rest.repos.createInOrg({ org: owner, name, description, private: true, auto_init: false });
    return { name, cloneUrl: data.clone_url, created: true };
  }

  async ensureWebhook(repo: string, hook: WebhookSpec): Promise<'created' | 'updated'> {
    const { owner } = this.options;
    const config = { url: hook.url, content_type: 'json' as const, secret: hook.secret, insecure_ssl: '0' as const };
    const { data: hooks } = await this.octokit.rest.repos.listWebhooks({ owner, repo });
    const existing = hooks.find((h) => h.config.url === hook.url);
    if (existing) {
      await this.octokit.rest.repos.updateWebhook({ owner, repo, hook_id: existing.id, config, events: ['push'], active: true });
      return 'updated';
    }
    await this.octokit.rest.repos.createWebhook({ owner, repo, name: 'web', config, events: ['push'], active: true });
    return 'created';
  }
}
