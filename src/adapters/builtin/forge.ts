/**
 * The built-in Git host as a Forge: bare repositories under the home folder,
 * created from `repos-template/` on first start, served over smart HTTP.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { PushEvent } from '../../core/events.js';
import type { Forge } from '../../core/ports.js';
import type { Settings } from '../../core/settings.js';
import type { FileChange } from '../../core/ports.js';
import type { LocalGitStore } from '../git/local-store.js';
import { registerGitHttp } from './http-backend.js';
import type { Access } from '../../server/access.js';
import type { CgiLimits } from './cgi.js';

export const TEMPLATE_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../repos-template');

type Role = keyof Settings['repos'];

export interface BuiltinForgeOptions {
  /** Which repositories take pushes: todo and config (default), all four (a stand-in for a forge's Git side), or none (read-only mirrors). */
  pushable?: 'todo+config' | 'all' | 'none';
  /** Who may push (or, with guard 'all', read): see server/access.ts. */
  access?: Access;
  guard?: 'push' | 'all';
  /** Idle and total time limits of one Git request. */
  limits?: CgiLimits;
  /** The largest pack one push may send (receive.maxInputSize). */
  maxPushBytes?: number;
}

export class BuiltinForge implements Forge {
  readonly kind = 'builtin';
  private readonly events = new EventEmitter();
  private baseUrl = '';

  constructor(
    private readonly store: LocalGitStore,
    private readonly repos: Settings['repos'],
    private readonly options: BuiltinForgeOptions = {},
  ) {}

  /** Creates any missing repository, with the template's content as its first commit. */
  async ensureRepos(templateDir = TEMPLATE_DIR): Promise<Role[]> {
    fs.mkdirSync(this.store.root, { recursive: true });
    const created: Role[] = [];
    for (const role of Object.keys(this.repos) as Role[]) {
      const name = this.repos[role];
      if (this.store.exists(name)) continue;
      await this.store.create(name);
      const dir = path.join(templateDir, role);
      const changes = fs.existsSync(dir) ? filesOf(dir) : [{ path: 'README.md', content: `# ${name}\n` }];
      await this.store.commit(name, { changes, message: `Initial ${role} repository from repos-template/${role}\n` });
      created.push(role);
    }
    return created;
  }

  register(app: FastifyInstance): void {
    registerGitHttp(app, {
      root: this.store.root,
      served: new Set(Object.values(this.repos)),
      pushable: new Set(
        { 'todo+config': [this.repos.todo, this.repos.config], all: Object.values(this.repos), none: [] }[this.options.pushable ?? 'todo+config'],
      ),
      ...(this.options.access ? { access: this.options.access } : {}),
      ...(this.options.guard ? { guard: this.options.guard } : {}),
      ...(this.options.limits ? { limits: this.options.limits } : {}),
      ...(this.options.maxPushBytes ? { maxPushBytes: this.options.maxPushBytes } : {}),
      onPush: (e) => this.events.emit('push', e),
      log: app.log,
    });
  }

  setBaseUrl(url: string): void {
    this.baseUrl = url.replace(/\/+$/, '');
  }

  cloneUrl(repo: string): string {
    return `${this.baseUrl}/git/${repo}.git`;
  }

  /** The built-in host shows a commit as plain text (a path on this server, so that it works behind any address). */
  commitUrl(repo: string, sha: string): string {
    return `/git/${repo}.git/commit/${sha}`;
  }

  onPush(listener: (event: PushEvent) => void): void {
    this.events.on('push', listener);
  }
}

/** Every file below a folder, as changes, for a first commit from a template. */
export function filesOf(dir: string, base = dir): FileChange[] {
  const out: FileChange[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesOf(full, base));
    else if (entry.isFile()) out.push({ path: path.relative(base, full).split(path.sep).join('/'), content: fs.readFileSync(full) });
  }
  return out;
}
