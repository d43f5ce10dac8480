/**
 * Pushes to the built-in Git host: the branch heads of the repository are
 * read before and after each receive-pack, and each branch that moved
 * becomes a PushEvent. Pushes to one repository are taken one at a time, so
 * that a heads diff belongs to one push.
 */
import { ZERO_SHA, type PushEvent } from '../core/events.js';
import { Serial } from '../core/serial.js';
import { run } from '../adapters/git/git-cli.js';

export class ReceiveHook {
  private readonly locks = new Map<string, Serial>();

  constructor(
    private readonly onPush: (event: PushEvent) => void,
    private readonly log: { info(obj: object, msg: string): void },
  ) {}

  /** Runs one push (`receive`) to `repo`, and reports what it moved. */
  around(repo: string, gitdir: string, receive: () => Promise<void>): Promise<void> {
    let lock = this.locks.get(repo);
    if (!lock) this.locks.set(repo, (lock = new Serial()));
    return lock.run(async () => {
      const before = await branchHeads(gitdir);
      await receive();
      const after = await branchHeads(gitdir);
      for (const [ref, oid] of after) {
        const old = before.get(ref) ?? ZERO_SHA;
        if (old === oid) continue;
        this.log.info({ repo, ref, before: old, after: oid }, 'push received');
        this.onPush({ repo, ref, before: old, after: oid, source: 'builtin' });
      }
    });
  }
}

export async function branchHeads(gitdir: string): Promise<Map<string, string>> {
  const out = await run('git', ['--git-dir', gitdir, 'for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads/']);
  const heads = new Map<string, string>();
  for (const line of out.split('\n')) {
    const [ref, oid] = line.split(' ');
    if (ref && oid) heads.set(ref, oid);
  }
  return heads;
}

