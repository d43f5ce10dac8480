/**
 * `gitjobs submit`: commit a project file into the todo repository and push
 * it, exactly as a person with git would; optionally wait for its result.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import type { TreeEntry } from 'isomorphic-git';
import { formatDuration } from '../core/duration.js';
import { runIdFor } from '../core/ids.js';
import { isRunFinal } from '../core/run.js';
import type { RunView } from '../core/run-reader.js';
import { SubmitError } from './submit-error.js';
import { NO_CACHE_TRAILER } from '../core/cache-key.js';
import { ApiError, resultText, runProgress, runView, type RunProgress } from './api.js';
import { readEvents } from './sse.js';

export interface SubmitOptions {
  file: string;
  /** Base URL of the gitjobs server, e.g. http://127.0.0.1:8080 */
  url: string;
  repos: { todo: string; tracking: string; done: string };
  branch: string;
  /** Name in the todo repository's projects/ folder; default: the file's own name. */
  as?: string;
  author?: { name: string; email: string };
  /** GITJOBS_API_TOKEN, when the server asks for credentials to push. */
  token?: string;
  /** Run without the result cache: the commit message carries the trailer that says so. */
  noCache?: boolean;
}

export interface Submitted {
  file: string;
  commit: string;
  run: string;
}

export { SubmitError };

export function repoUrl(base: string, repo: string): string {
  return `${base.replace(/\/+$/, '')}/git/${repo}.git`;
}

function auth(token: string | undefined) {
  return token ? { onAuth: () => ({ username: 'gitjobs', password: token }) } : {};
}

export async function submit(options: SubmitOptions): Promise<Submitted> {
  const content = fs.readFileSync(options.file);
  const name = (options.as ?? path.basename(options.file)).replace(/^\/+/, '');
  const target = `projects/${name.endsWith('.json') ? name : `${name}.json`}`;
  const parts = target.split('/');
  if (parts.some((part) => part === '' || part === '.' || part === '..' || part.toLowerCase() === '.git')) {
    throw new SubmitError(`${JSON.stringify(name)} is not a file name under projects/: no empty, ".", ".." or ".git" parts`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-submit-'));
  try {
    const url = repoUrl(options.url, options.repos.todo);
    try {
      // Only the tip's commit and trees are needed (and the blobs the pack carries): nothing is checked out.
      await git.clone({ fs, http, dir, url, ref: options.branch, singleBranch: true, depth: 1, noCheckout: true, ...auth(options.token) });
    } catch (err) {
      throw new SubmitError(`cannot clone ${url}: ${(err as Error).message}. Is \`gitjobs up\` running there?`);
    }
    const parent = await git.resolveRef({ fs, dir, ref: `refs/heads/${options.branch}` }).catch(() => undefined);
    if (parent && (await fileAt(dir, parent, target))?.equals(content)) {
      throw new SubmitError(`${target} already has this content in ${options.repos.todo}; nothing to run. Change the file or pick another name with --as NAME.`);
    }
    const blob = await git.writeBlob({ fs, dir, blob: content });
    const base = parent ? (await git.readCommit({ fs, dir, oid: parent })).commit.tree : undefined;
    const tree = await treeWith(dir, base, parts, blob);
    const author = options.author ?? { name: process.env.GIT_AUTHOR_NAME ?? os.userInfo().username, email: process.env.GIT_AUTHOR_EMAIL ?? `${os.userInfo().username}@${os.hostname()}` };
    const message = `Submit ${target}\n${options.noCache ? `\n${NO_CACHE_TRAILER}\n` : ''}`;
    const commit = await git.commit({ fs, dir, message, author, tree, parent: parent ? [parent] : [], ref: `refs/heads/${options.branch}` });
    let pushed;
    try {
      pushed = await git.push({ fs, http, dir, url, ref: options.branch, remoteRef: options.branch, ...auth(options.token) });
    } catch (err) {
      if ((err as { code?: string }).code === 'HttpError' && /401/.test((err as Error).message)) {
        throw new SubmitError(`${url} needs credentials to push: set GITJOBS_API_TOKEN to the server's API token`);
      }
      throw err;
    }
    if (!pushed.ok) throw new SubmitError(`push to ${url} was refused: ${pushed.error ?? JSON.stringify(pushed.refs)}`);
    return { file: target, commit, run: runIdFor(target, commit) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The file at `filepath` in a commit, or undefined where there is none (or a folder is there). */
async function fileAt(dir: string, commit: string, filepath: string): Promise<Buffer | undefined> {
  try {
    return Buffer.from((await git.readBlob({ fs, dir, oid: commit, filepath })).blob);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'NotFoundError' || code === 'ObjectTypeError') return undefined;
    throw err;
  }
}

/** `tree` (or an empty one) with the blob put at the path `parts`, folders made or updated on the way: the new tree's id. */
async function treeWith(dir: string, tree: string | undefined, parts: string[], blob: string): Promise<string> {
  const entries = tree ? (await git.readTree({ fs, dir, oid: tree })).tree : [];
  const [name, ...rest] = parts as [string, ...string[]];
  const at = entries.findIndex((e) => e.path === name);
  const old = at < 0 ? undefined : entries[at]!;
  const entry: TreeEntry = rest.length
    ? { mode: '040000', path: name, type: 'tree', oid: await treeWith(dir, old?.type === 'tree' ? old.oid : undefined, rest, blob) }
    : { mode: old?.mode === '100755' ? '100755' : '100644', path: name, type: 'blob', oid: blob };
  if (at < 0) entries.push(entry);
  else entries[at] = entry;
  return git.writeTree({ fs, dir, tree: entries });
}

export interface WaitResult {
  view: RunView;
  resultText?: string;
}

/**
 * Follows a run until it is final, reporting each change of progress; then
 * reads the whole run and its result. The server tells of progress on its
 * event stream as transitions become durable; a slow poll of the run (which
 * the server reads from tracking) covers what a stream can miss.
 */
export async function waitForRun(options: {
  url: string;
  run: string;
  onProgress?: (progress: RunProgress, elapsedMs: number) => void;
  timeoutMs?: number;
  /** How often the run is read while no event comes (default 1 s). */
  intervalMs?: number;
}): Promise<WaitResult> {
  const started = Date.now();
  const events = new AbortController();
  let last = '';
  let current: RunProgress | undefined;
  let wake: (() => void) | undefined;
  const report = (now: RunProgress) => {
    current = now;
    const key = JSON.stringify([now.run.state, now.progress]);
    if (key !== last) options.onProgress?.(now, Date.now() - started);
    last = key;
    wake?.();
  };
  const poll = async () => {
    const now = await runProgress(options.url, options.run).catch((err: Error) => {
      // Not recorded yet (the push is being dispatched): keep waiting.
      if (err instanceof ApiError && err.status === 404) return undefined;
      throw err;
    });
    if (now) report(now);
  };
  void followEvents(options.url, options.run, events.signal, (e) => {
    if (e.state === 'rejected' || isFinalState(e.state)) void poll().catch(() => undefined);
    else if (current && e.progress) report({ run: { ...current.run, state: e.state as RunProgress['run']['state'] }, progress: { ...current.progress, ...e.progress } });
    else void poll().catch(() => undefined);
  });
  try {
    for (;;) {
      await poll();
      if (current && isRunFinal(current.run)) break;
      if (options.timeoutMs && Date.now() - started > options.timeoutMs) {
        throw new SubmitError(`run ${options.run} did not finish within ${formatDuration(options.timeoutMs)}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.intervalMs ?? 1000);
        wake = () => {
          if (current && isRunFinal(current.run)) {
            clearTimeout(timer);
            resolve();
          }
        };
      });
    }
  } finally {
    events.abort();
  }
  const view = await runView(options.url, options.run);
  if (view.run.state === 'rejected') return { view };
  const text = await resultText(options.url, options.run);
  return text === undefined ? { view } : { view, resultText: text };
}

const isFinalState = (state: string) => state === 'succeeded' || state === 'failed' || state === 'cancelled';

/** The run's events from the server's stream, until `signal` aborts; quietly ends if the stream cannot be had. */
async function followEvents(url: string, run: string, signal: AbortSignal, onRun: (e: { state: string; progress?: Partial<RunProgress['progress']> }) => void): Promise<void> {
  try {
    const res = await fetch(`${url.replace(/\/+$/, '')}/api/events?run=${encodeURIComponent(run)}`, { signal, headers: { accept: 'text/event-stream' } });
    if (!res.ok || !res.body) return;
    for await (const { event, data } of readEvents(res.body as unknown as AsyncIterable<Uint8Array>)) {
      if (event === 'run') onRun(data as { state: string; progress?: Partial<RunProgress['progress']> });
    }
  } catch {
    /* aborted, or the server went: the poll carries on */
  }
}
