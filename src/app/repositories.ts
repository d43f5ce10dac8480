/**
 * Where the four repositories live: bare repositories under the home folder
 * (the built-in host serves them), or mirrors of repositories on GitHub or
 * Gitea (the built-in host serves the mirrors read-only).
 */
import path from 'node:path';
import { LocalGitStore } from '../adapters/git/local-store.js';
import { MirrorGitStore } from '../adapters/git/mirror-store.js';
import { GiteaForge } from '../adapters/forges/gitea.js';
import { GitHubForge } from '../adapters/forges/github.js';
import type { Logger } from '../core/logger.js';
import type { Settings } from '../core/settings.js';

/** Where the four repositories live when not on the built-in host. */
export type RemoteForgeOptions =
  | { kind: 'github'; owner: string; token: string; apiUrl?: string; gitBaseUrl?: string }
  | { kind: 'gitea'; owner: string; token: string; url: string; gitBaseUrl?: string };

export type RemoteForge = GitHubForge | GiteaForge;

export function createRemoteForge(options: RemoteForgeOptions): RemoteForge {
  if (options.kind === 'github') {
    return new GitHubForge({ token: options.token, owner: options.owner, ...(options.apiUrl ? { apiUrl: options.apiUrl } : {}), ...(options.gitBaseUrl ? { gitBaseUrl: options.gitBaseUrl } : {}) });
  }
  return new GiteaForge({ token: options.token, owner: options.owner, url: options.url, ...(options.gitBaseUrl ? { gitBaseUrl: options.gitBaseUrl } : {}) });
}

export interface Repositories {
  /** What gitjobs reads and writes through. */
  store: LocalGitStore | MirrorGitStore;
  /** The bare repositories on this machine (the mirrors, with a forge). */
  local: LocalGitStore;
  remote?: RemoteForge;
  mirrors?: MirrorGitStore;
  /** The todo and config heads the mirrors had before this start: pushes made while gitjobs was down are found by the first poll. */
  baseline: Record<string, string | undefined>;
}

export async function openRepositories(options: { home: string; settings: Settings; forge?: RemoteForgeOptions; logger: Logger }): Promise<Repositories> {
  const { settings, logger } = options;
  if (!options.forge) {
    const local = new LocalGitStore(path.join(options.home, 'repos'), settings.branch, logger);
    return { store: local, local, baseline: {} };
  }
  const remote = createRemoteForge(options.forge);
  const mirrors = new MirrorGitStore({
    root: path.join(options.home, 'mirrors'),
    branch: settings.branch,
    urls: Object.fromEntries(Object.values(settings.repos).map((name) => [name, remote.cloneUrl(name)])),
    auth: remote.gitAuth,
    log: logger,
  });
  const baseline: Record<string, string | undefined> = {};
  for (const name of [settings.repos.todo, settings.repos.config]) baseline[name] = await mirrors.local.head(name);
  await mirrors.init();
  return { store: mirrors, local: mirrors.local, remote, mirrors, baseline };
}
