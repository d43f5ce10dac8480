/**
 * Keeps a repository's packs few and small. Each group of commits is its
 * own pack, so:
 *
 *  - every PACKS_PER_REPACK of them (no sooner than REPACK_EVERY_MS after
 *    the last), `git repack --geometric=2 -d --window=0` rolls the small
 *    ones up: geometric (each pack at least twice the size of the ones it
 *    absorbs, so the work stays logarithmic), and with no delta search (the
 *    writer's own deltas are kept): cheap enough to run while a run goes on;
 *  - once writing has been quiet for QUIET_MS, the same with git's delta
 *    search compacts what came in whole.
 *
 * Rolled-up packs keep every object they held, reachable or not, so a
 * group whose branch move is still in flight never loses an object. One
 * repack at a time; a failed one is logged and tried again later.
 */
import { execFile } from 'node:child_process';
import type { Logger } from '../../core/logger.js';

export const PACKS_PER_REPACK = 64;
export const REPACK_EVERY_MS = 1_000;
export const QUIET_MS = 3_000;

export class PackMaintenance {
  private written = 0;
  /** Packs written since the last compacting repack. */
  private sinceCompact = 0;
  private last = 0;
  private running: Promise<void> | undefined;
  private quiet: NodeJS.Timeout | undefined;

  constructor(
    private readonly gitdir: string,
    private readonly log?: Logger,
  ) {}

  packWritten(): void {
    this.written++;
    this.sinceCompact++;
    clearTimeout(this.quiet);
    this.quiet = setTimeout(() => this.start(true), QUIET_MS);
    this.quiet.unref();
    if (this.written >= PACKS_PER_REPACK && Date.now() - this.last >= REPACK_EVERY_MS) this.start();
  }

  private start(compact = false): void {
    if (this.running || (this.written < 2 && !compact) || (compact && this.sinceCompact === 0)) return;
    this.written = 0;
    this.last = Date.now();
    if (compact) this.sinceCompact = 0;
    this.running = this.repack(compact).finally(() => (this.running = undefined));
  }

  /** Resolves when no repack is running, and none is waiting for quiet. */
  async idle(): Promise<void> {
    clearTimeout(this.quiet);
    await this.running;
  }

  repack(compact = false): Promise<void> {
    return new Promise((resolve) => {
      execFile(
        'git',
        ['--git-dir', this.gitdir, '-c', 'repack.writeBitmaps=false', '-c', 'pack.writeBitmapHashCache=false', 'repack', '-d', '-q', '--geometric=2', ...(compact ? [] : ['--window=0'])],
        { maxBuffer: 1 << 20 },
        (err, _stdout, stderr) => {
          if (err) this.log?.warn({ gitdir: this.gitdir, err: (stderr || err.message).trim().slice(0, 500) }, 'git repack failed; tried again later');
          resolve();
        },
      );
    });
  }
}
