/**
 * Gitea (and Forgejo) through its REST API (/api/v1): provisioning of the
 * four repositories and their webhooks, and commit statuses.
 */
import type { CommitStatus, CommitStatuses, Forge } from '../../core/ports.js';
import { statusBody, type Provisioner, type ProvisionedRepo, type WebhookSpec } from './provision.js';

export interface GiteaOptions {
  /** The Gitea server, e.g. http://127.0.0.1:3000 */
  url: string;
  token: string;
  owner: string;
  /** Where clone URLs point (default URL/OWNER). */
  gitBaseUrl?: string;
}

export class GiteaApiError extends Error {
  override readonly name = 'GiteaApiError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class GiteaForge implements Forge, CommitStatuses, Provisioner {
  readonly kind = 'gitea';

  constructor(private readonly options: GiteaOptions) {}

  private get base(): string {
    return this.options.url.replace(/\/+$/, '');
  }

  cloneUrl(repo: string): string {
    return `${(this.options.gitBaseUrl ?? `${this.base}/${this.options.owner}`).replace(/\/+$/, '')}/${repo}.git`;
  }

  /** The forge's own page for a commit. */
  commitUrl(repo: string, sha: string): string {
    return `${this.cloneUrl(repo).replace(/\.git$/, '')}/commit/${sha}`;
  }

  /** Git over HTTP takes the token as password, with any user name. */
  get gitAuth() {
    return { username: 'gitjobs', password: this.options.token };
  }

  private async api<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.base}/api/v1${path}`, {
      method,
      headers: { authorization: `token ${this.options.token}`, accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new GiteaApiError(res.status, `Gitea ${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async setStatus(repo: string, sha: string, status: CommitStatus): Promise<void> {
    await this.api('POST', `/repos/${this.options.owner}/${repo}/statuses/${sha}`, statusBody(status));
  }

  async ensureRepo(name: string, description: string): Promise<ProvisionedRepo> {
    const { owner } = this.options;
    try {
      const repo = await this.api<{ clone_url: string }>('GET', `/repos/${owner}/${name}`);
      return { name, cloneUrl: repo.clone_url, created: false };
    } catch (err) {
      if (!(err instanceof GiteaApiError) || err.status !== 404) throw err;
    }
    const me = await this.api<{ login: string }>('GET', '/user');
    const body = { name, description, private: true, auto_init: false, default_branch: 'main' };
    const repo = await this.api<{ clone_url: string }>('POST', me.login === owner ? '/user/repos' : `/orgs/${owner}/repos`, body);
    return { name, cloneUrl: repo.clone_url, created: true };
  }

  async ensureWebhook(repo: string, hook: WebhookSpec): Promise<'created' | 'updated'> {
    const { owner } = this.options;
    const config = { url: hook.url, content_type: 'json', secret: hook.secret };
    const hooks = await this.api<{ id: number; config: { url: string } }[]>('GET', `/repos/${owner}/${repo}/hooks`);
    const existing = hooks.find((h) => h.config.url === hook.url);
    if (existing) {
      await this.api('PATCH', `/repos/${owner}/${repo}/hooks/${existing.id}`, { config, events: ['push'], active: true });
      return 'updated';
    }
    await this.api('POST', `/repos/${owner}/${repo}/hooks`, { type: 'gitea', config, events: ['push'], active: true, branch_filter: '*' });
    return 'created';
  }
}
