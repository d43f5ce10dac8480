/**
 * A branch moved the way git moves it: under `<ref>.lock` (created
 * exclusively, so that git and other gitjobs processes never see a lost
 * update), written, fsynced and renamed into place, the folder fsynced.
 *
 * A lock left by a process that died holding it is taken over: at once when
 * the holder was a gitjobs process of this machine that is gone (each
 * records its pid beside the lock, outside `refs/` where git would take it
 * for a branch), and otherwise once the lock is older than any live writer
 * holds one.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../core/logger.js';
import { processAlive } from '../process/alive.js';
import { fsyncDir } from './pack.js';

/** A ref lock older than any live writer holds one. */
export const STALE_LOCK_MS = 10_000;

/** Where a gitjobs process that holds `ref`'s lock writes its pid. */
function ownerFile(gitdir: string, ref: string): string {
  return path.join(gitdir, 'gitjobs', 'lock-owners', ref.replace(/\//g, '%'));
}

/**
 * Removes a lock whose holder is gone: a gitjobs process of this machine
 * that recorded its pid for this very lock and is no longer alive, or
 * anyone, once the lock is STALE_LOCK_MS old. True if it did.
 */
async function breakStaleLock(lockPath: string, owner: string, log?: Logger): Promise<boolean> {
  try {
    const lock = await fs.promises.stat(lockPath);
    let dead = false;
    const recorded = await fs.promises.stat(owner).catch(() => undefined);
    // The pid file belongs to this lock only if it was written after the lock was made.
    if (recorded && recorded.mtimeMs >= lock.mtimeMs) {
      const pid = Number((await fs.promises.readFile(owner, 'utf8')).trim());
      dead = Number.isInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid);
    }
    if (!dead && Date.now() - lock.mtimeMs < STALE_LOCK_MS) return false;
    await fs.promises.unlink(lockPath);
    log?.warn({ lock: lockPath, ageMs: Math.round(Date.now() - lock.mtimeMs) }, 'removed a ref lock left by a writer that is gone');
    return true;
  } catch {
    return false; // released meanwhile
  }
}

/** The branch head as git and this writer keep it: the loose ref file, or packed-refs. */
export async function readRef(gitdir: string, ref: string): Promise<string | undefined> {
  try {
    const text = (await fs.promises.readFile(path.join(gitdir, ref), 'utf8')).trim();
    if (/^[0-9a-f]{40}$/.test(text)) return text;
  } catch {
    /* not loose */
  }
  try {
    for (const line of (await fs.promises.readFile(path.join(gitdir, 'packed-refs'), 'utf8')).split('\n')) {
      const [oid, name] = line.split(' ');
      if (name === ref && oid && /^[0-9a-f]{40}$/.test(oid)) return oid;
    }
  } catch {
    /* no packed refs */
  }
  return undefined;
}

/**
 * Moves `ref` from `expected` to `next`; false when the branch is not at
 * `expected` (another writer moved it). Durable once it resolves true.
 */
export async function compareAndSwap(gitdir: string, ref: string, expected: string | undefined, next: string, log?: Logger): Promise<boolean> {
  const refPath = path.join(gitdir, ref);
  const lockPath = `${refPath}.lock`;
  const owner = ownerFile(gitdir, ref);
  await fs.promises.mkdir(path.dirname(refPath), { recursive: true });
  let lock: fs.promises.FileHandle | undefined;
  for (let i = 0; !lock; i++) {
    try {
      lock = await fs.promises.open(lockPath, 'wx');
      await fs.promises.mkdir(path.dirname(owner), { recursive: true });
      await fs.promises.writeFile(owner, String(process.pid));
    } catch (err) {
      if (lock) {
        await lock.close().catch(() => undefined);
        await fs.promises.unlink(lockPath).catch(() => undefined);
        throw err;
      }
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
      // A ref lock is held for milliseconds: one held longer may have been left by a process that died holding it.
      if (i % 20 === 19 && (await breakStaleLock(lockPath, owner, log))) continue;
      if (i > 6000) throw new Error(`${lockPath} has been held for over 30 s; remove it if no git or gitjobs process is writing`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  try {
    if ((await readRef(gitdir, ref)) !== expected) {
      await lock.close();
      await fs.promises.unlink(lockPath);
      return false;
    }
    await lock.writeFile(`${next}\n`);
    await lock.sync();
    await lock.close();
    await fs.promises.rename(lockPath, refPath);
    await fsyncDir(path.dirname(refPath));
    return true;
  } catch (err) {
    await lock.close().catch(() => undefined);
    await fs.promises.unlink(lockPath).catch(() => undefined);
    throw err;
  } finally {
    await fs.promises.unlink(owner).catch(() => undefined);
  }
}
