/**
 * Polling for hosts that webhooks cannot reach: watches the todo and config
 * branches with `git ls-remote` semantics and feeds what moved into the same
 * push-event path as webhooks. The dispatcher makes overlaps harmless.
 */
import type { PushEvent } from '../core/events.js';
import type { Logger } from '../core/logger.js';

/** A forge's branches as `git ls-remote` sees them, and a way to bring their commits here (mirror-store.ts). */
export interface RemoteBranches {
  remoteHead(repo: string): Promise<string | undefined>;
  sync(repo: string): Promise<unknown>;
}

export interface PollerOptions {
  store: RemoteBranches;
  repos: string[];
  branch: string;
  intervalMs: number;
  onPush: (event: PushEvent) => void;
  log: Logger;
  /** Heads already handled, per repository: what changed since is reported on the first poll. */
  baseline: Record<string, string | undefined>;
}

export class Poller {
  private timer: NodeJS.Timeout | undefined;
  private readonly last = new Map<string, string | undefined>();
  private running: Promise<unknown> | undefined;

  constructor(private readonly options: PollerOptions) {
    for (const repo of options.repos) this.last.set(repo, options.baseline[repo]);
  }

  start(): void {
    const loop = () => {
      this.running = this.poll().finally(() => {
        this.running = undefined;
        if (this.timer !== undefined) this.timer = setTimeout(loop, this.options.intervalMs);
      });
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One round: every watched branch that moved becomes a push event. */
  async poll(): Promise<PushEvent[]> {
    const events: PushEvent[] = [];
    for (const repo of this.options.repos) {
      try {
        const head = await this.options.store.remoteHead(repo);
        const previous = this.last.get(repo);
        if (!head || head === previous) continue;
        await this.options.store.sync(repo);
        this.last.set(repo, head);
        if (!previous) continue; // first sight: nothing to compare with
        const event: PushEvent = { repo, ref: `refs/heads/${this.options.branch}`, before: previous, after: head, source: 'poll' };
        this.options.log.info({ repo, before: previous, after: head }, 'poll found new commits');
        events.push(event);
        this.options.onPush(event);
      } catch (err) {
        this.options.log.warn({ repo, err: (err as Error).message }, 'poll failed; will try again');
      }
    }
    return events;
  }
}
