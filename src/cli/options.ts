/** Settings from flags and environment, with their defaults, for every command. */
import fs from 'node:fs';
import path from 'node:path';
import type { RemoteForgeOptions } from '../app/gitjobs.js';
import { parseDuration } from '../core/duration.js';
import { parseSize } from '../core/size.js';
import { DEFAULT_AMQP_URL, DEFAULT_SETTINGS, prefixedQueues, type Settings } from '../core/settings.js';

export const COMMON_FLAGS = {
  'amqp-url': { type: 'string' },
  'queue-prefix': { type: 'string' },
  'todo-repo': { type: 'string' },
  'tracking-repo': { type: 'string' },
  'done-repo': { type: 'string' },
  'config-repo': { type: 'string' },
  branch: { type: 'string' },
  'base-image': { type: 'string' },
  'log-level': { type: 'string' },
  'consumer-timeout': { type: 'string' },
  'result-cap': { type: 'string' },
  'max-message': { type: 'string' },
  'push-files': { type: 'string' },
  'read-ahead': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function durationSetting(flags: Flags, flag: string, envValue: string | undefined, fallback: number): number {
  const raw = str(flags, flag) ?? envValue;
  if (raw === undefined) return fallback;
  const ms = parseDuration(raw);
  if (ms === undefined) throw new UsageError(`--${flag} must be a duration such as 30m, not ${JSON.stringify(raw)}`);
  return ms;
}

function bytesSetting(flags: Flags, flag: string, envValue: string | undefined, fallback: number): number {
  const raw = str(flags, flag) ?? envValue;
  if (raw === undefined) return fallback;
  const n = parseSize(raw);
  if (n === undefined) throw new UsageError(`--${flag} must be a size such as 64MiB, not ${JSON.stringify(raw)}`);
  return n;
}

function countSetting(flags: Flags, flag: string, envValue: string | undefined, fallback: number, min = 1): number {
  const raw = str(flags, flag) ?? envValue;
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`--${flag} must be a whole number of at least ${min}, not ${JSON.stringify(raw)}`);
  return n;
}

export type Flags = Record<string, string | boolean | undefined>;

export function str(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function settingsFrom(flags: Flags, env = process.env): Settings {
  const d = DEFAULT_SETTINGS;
  return {
    ...d,
    repos: {
      todo: str(flags, 'todo-repo') ?? env.GITJOBS_TODO_REPO ?? d.repos.todo,
      tracking: str(flags, 'tracking-repo') ?? env.GITJOBS_TRACKING_REPO ?? d.repos.tracking,
      done: str(flags, 'done-repo') ?? env.GITJOBS_DONE_REPO ?? d.repos.done,
      config: str(flags, 'config-repo') ?? env.GITJOBS_CONFIG_REPO ?? d.repos.config,
    },
    branch: str(flags, 'branch') ?? env.GITJOBS_BRANCH ?? d.branch,
    queues: prefixedQueues(str(flags, 'queue-prefix') ?? env.GITJOBS_QUEUE_PREFIX),
    baseImage: str(flags, 'base-image') ?? env.GITJOBS_BASE_IMAGE ?? d.baseImage,
    consumerTimeoutMs: durationSetting(flags, 'consumer-timeout', env.GITJOBS_CONSUMER_TIMEOUT, d.consumerTimeoutMs),
    heartbeatMs: durationSetting(flags, 'heartbeat', env.GITJOBS_HEARTBEAT, d.heartbeatMs),
    resultCap: bytesSetting(flags, 'result-cap', env.GITJOBS_RESULT_CAP, d.resultCap),
    pushFiles: countSetting(flags, 'push-files', env.GITJOBS_PUSH_FILES, d.pushFiles),
    maxMessageBytes: bytesSetting(flags, 'max-message', env.GITJOBS_MAX_MESSAGE, d.maxMessageBytes),
    readAhead: countSetting(flags, 'read-ahead', env.GITJOBS_READ_AHEAD, d.readAhead, 0),
  };
}

export function amqpUrl(flags: Flags, env = process.env): string {
  return str(flags, 'amqp-url') ?? env.GITJOBS_AMQP_URL ?? DEFAULT_AMQP_URL;
}

export function port(flags: Flags, env = process.env): number {
  const raw = str(flags, 'port') ?? env.GITJOBS_PORT ?? '8080';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--port must be a port number, not ${JSON.stringify(raw)}`);
  return n;
}

export function home(flags: Flags, env = process.env): string {
  return path.resolve(str(flags, 'home') ?? env.GITJOBS_HOME ?? '.gitjobs');
}

export function serverUrl(flags: Flags, env = process.env): string {
  return str(flags, 'url') ?? env.GITJOBS_URL ?? `http://127.0.0.1:${port(flags, env)}`;
}

export function positiveInt(flags: Flags, name: string, fallback: number): number {
  const raw = str(flags, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a whole number, not ${JSON.stringify(raw)}`);
  return n;
}

export function executorKind(flags: Flags): 'docker' | 'process' {
  const v = str(flags, 'executor') ?? process.env.GITJOBS_EXECUTOR ?? 'docker';
  if (v !== 'docker' && v !== 'process') throw new UsageError(`--executor must be docker or process, not ${JSON.stringify(v)}`);
  return v;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const FORGE_FLAGS = {
  forge: { type: 'string' },
  owner: { type: 'string' },
  'forge-url': { type: 'string' },
  'git-url': { type: 'string' },
} as const;

/** The forge settings of `up` and `init`; undefined for the built-in host. Tokens come from the environment only. */
export function remoteForge(flags: Flags, env = process.env): RemoteForgeOptions | undefined {
  const kind = str(flags, 'forge') ?? env.GITJOBS_FORGE ?? 'builtin';
  if (kind === 'builtin') return undefined;
  if (kind !== 'github' && kind !== 'gitea') throw new UsageError(`--forge must be builtin, github or gitea, not ${JSON.stringify(kind)}`);
  const owner = str(flags, 'owner') ?? env.GITJOBS_OWNER;
  if (!owner) throw new UsageError(`--forge ${kind} needs --owner (the user or organisation that owns the repositories)`);
  const forgeUrl = str(flags, 'forge-url') ?? env.GITJOBS_FORGE_URL;
  const gitBaseUrl = str(flags, 'git-url') ?? env.GITJOBS_GIT_URL;
  if (kind === 'github') {
    const token = env.GITHUB_TOKEN;
    if (!token) throw new UsageError('--forge github needs a token in the environment variable GITHUB_TOKEN');
    return { kind, owner, token, ...(forgeUrl ? { apiUrl: forgeUrl } : {}), ...(gitBaseUrl ? { gitBaseUrl } : {}) };
  }
  const token = env.GITEA_TOKEN;
  if (!token) throw new UsageError('--forge gitea needs a token in the environment variable GITEA_TOKEN');
  if (!forgeUrl) throw new UsageError('--forge gitea needs --forge-url, the Gitea server (e.g. http://127.0.0.1:3000)');
  return { kind, owner, token, url: forgeUrl, ...(gitBaseUrl ? { gitBaseUrl } : {}) };
}

/** Where `init` keeps the webhook secret it generated: readable by its owner only, never in a repository. */
export function secretFile(homeDir: string): string {
  return path.join(homeDir, 'webhook-secret');
}

export function webhookSecret(homeDir: string, env = process.env): string | undefined {
  if (env.GITJOBS_WEBHOOK_SECRET) return env.GITJOBS_WEBHOOK_SECRET;
  const file = secretFile(homeDir);
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() || undefined : undefined;
}

export function graceMs(flags: Flags, env = process.env): number {
  return durationSetting(flags, 'grace', env.GITJOBS_GRACE, 30_000);
}
