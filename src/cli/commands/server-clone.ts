/** A bare clone of one of the server's repositories, from its Git host, for commands that read Git itself (verify, bisect). */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { serverUrl, UsageError, type Flags } from '../options.js';

const run = promisify(execFile);

/** Clones `repo` from the server's Git host into `dir` (an empty folder); a failure says which URL and why. */
export async function cloneFromServer(flags: Flags, repo: string, dir: string): Promise<void> {
  const url = `${serverUrl(flags).replace(/\/+$/, '')}/git/${repo}.git`;
  await run('git', ['clone', '--bare', '--quiet', url, dir]).catch((err: Error) => {
    // git's own complaint is after the first line (which only repeats the command).
    throw new UsageError(`could not clone ${url}: ${err.message.split('\n').slice(1).join(' ').trim() || err.message}`);
  });
}
