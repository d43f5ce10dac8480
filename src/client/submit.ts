/**
 * `gitjobs submit`: commit a project file into the todo repository and push
 * it, exactly as a person with git would; optionally wait for its result.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { RemoteRepo } from '../adapters/git/remote-repo.js';
import { formatDuration } from '../core/duration.js';
import { runIdFor } from '../core/ids.js';
import { layout } from '../core/layout.js';
import { isRunFinal } from '../core/run.js';
import { TrackingReader, type RunView } from './tracking-reader.js';

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
}

export interface Submitted {
  file: string;
  commit: string;
  run: string;
}

export class SubmitError extends Error {
  override readonly name = 'SubmitError';
}

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
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-submit-'));
  try {
    const url = repoUrl(options.url, options.repos.todo);
    try {
      await git.clone({ fs, http, dir, url, ref: options.branch, singleBranch: true, depth: 1, ...auth(options.token) });
    } catch (err) {
      throw new SubmitError(`cannot clone ${url}: ${(err as Error).message}. Is \`gitjobs up\` running there?`);
    }
    const full = path.join(dir, target);
    if (fs.existsSync(full) && fs.readFileSync(full).equals(content)) {
      throw new SubmitError(`${target} already has this content in ${options.repos.todo}; nothing to run. Change the file or pick another name with --as NAME.`);
    }
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, content);
    await git.add({ fs, dir, filepath: target });
    const author = options.author ?? { name: process.env.GIT_AUTHOR_NAME ?? os.userInfo().username, email: process.env.GIT_AUTHOR_EMAIL ?? `${os.userInfo().username}@${os.hostname()}` };
    const commit = await git.commit({ fs, dir, message: `Submit ${target}\n`, author });
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

export interface WaitResult {
  view: RunView;
  resultText?: string;
}

/** Follows a run in tracking until it is final, reporting each change of progress. */
export async function waitForRun(options: {
  url: string;
  repos: { tracking: string; done: string };
  branch: string;
  run: string;
  onProgress?: (view: RunView, elapsedMs: number) => void;
  timeoutMs?: number;
  intervalMs?: number;
}): Promise<WaitResult> {
  const reader = new TrackingReader(repoUrl(options.url, options.repos.tracking), options.branch);
  const started = Date.now();
  let lastHead = '';
  for (;;) {
    const head = await reader.refresh();
    if (head !== lastHead) {
      lastHead = head;
      const view = await reader.run(options.run);
      if (view) {
        options.onProgress?.(view, Date.now() - started);
        if (isRunFinal(view.run)) {
          if (view.run.state === 'rejected') return { view };
          const done = new RemoteRepo(repoUrl(options.url, options.repos.done), options.branch);
          await done.fetch();
          const resultText = await done.readFile(view.run.doneCommit!, layout.resultText(options.run));
          return resultText === undefined ? { view } : { view, resultText };
        }
      }
    }
    if (options.timeoutMs && Date.now() - started > options.timeoutMs) {
      throw new SubmitError(`run ${options.run} did not finish within ${formatDuration(options.timeoutMs)}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 300));
  }
}

