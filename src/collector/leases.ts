/**
 * Attempts held by heartbeats, in the manner of BullMQ's lock manager:
 *
 *  - a leased attempt (its worker acked the TODO message at start, since the
 *    task may outlive the broker's patience) is lost when no heartbeat comes
 *    for its lease; every collector holds every lease it hears of, so the
 *    loss is noticed even when the collector that saw the start is gone;
 *  - an unclaimed attempt (recorded running when this collector started, held
 *    by its message) is queued again unless a worker shows it still has it
 *    within the watch.
 *
 * It decides nothing about tracking: it calls `onLost` and `onUnclaimed`.
 */
import { attemptKey, type HeartbeatEvent, type TodoMessage } from '../core/channels.js';
import type { Clock } from '../core/ports.js';

export interface Attempt {
  run: string;
  task: string;
  attempt: number;
}

export interface Lease extends Attempt {
  leaseMs: number;
  expires: number;
}

export interface LeaseKeeperOptions {
  clock: Clock;
  /** How often expiries are looked for. */
  checkEveryMs: number;
  onLost(lease: Lease): Promise<void>;
  onUnclaimed(message: TodoMessage): Promise<void>;
}

/** How many finished attempts are remembered, so that a heartbeat sent just before the end starts no lease. */
const FINISHED_MEMORY = 4096;

export class LeaseKeeper {
  private readonly leases = new Map<string, Lease>();
  private readonly unclaimed = new Map<string, { message: TodoMessage; expires: number }>();
  private readonly finished = new Set<string>();
  private cancelTimer: (() => void) | undefined;
  private checking: Promise<void> | undefined;

  constructor(private readonly options: LeaseKeeperOptions) {}

  start(): void {
    const tick = () => {
      this.checking = this.check().finally(() => {
        this.checking = undefined;
        if (this.cancelTimer) this.cancelTimer = this.options.clock.after(this.options.checkEveryMs, tick);
      });
    };
    this.cancelTimer = this.options.clock.after(this.options.checkEveryMs, tick);
  }

  async stop(): Promise<void> {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.unclaimed.clear();
    await this.checking;
  }

  /** A leased attempt started (or recovery found one): lost unless heartbeats come within `leaseMs`. */
  hold(attempt: Attempt, leaseMs: number): void {
    this.leases.set(attemptKey(attempt), { ...attempt, leaseMs, expires: this.options.clock.now() + leaseMs });
  }

  /** A worker reports it still runs the attempt: its lease goes on, and it is no longer unclaimed. */
  heartbeat(event: HeartbeatEvent): void {
    const key = attemptKey(event);
    this.unclaimed.delete(key);
    const lease = this.leases.get(key);
    if (lease) lease.expires = this.options.clock.now() + lease.leaseMs;
    else if (event.leaseMs && !this.finished.has(key)) this.hold(event, event.leaseMs);
  }

  /** Any news of the attempt from a worker: it is not unclaimed. */
  claimed(attempt: Attempt): void {
    this.unclaimed.delete(attemptKey(attempt));
  }

  /** The attempt ended: no lease, and a late heartbeat starts none. */
  release(attempt: Attempt): void {
    const key = attemptKey(attempt);
    this.leases.delete(key);
    this.unclaimed.delete(key);
    this.finished.add(key);
    if (this.finished.size > FINISHED_MEMORY) this.finished.delete(this.finished.values().next().value!);
  }

  /** An attempt recorded running at start: `onUnclaimed(message)` unless a worker reports it within `withinMs`. */
  watch(message: TodoMessage, withinMs: number): void {
    this.unclaimed.set(attemptKey(message), { message, expires: this.options.clock.now() + withinMs });
  }

  get held(): number {
    return this.leases.size;
  }

  /** Hands every lapsed lease and unclaimed attempt to its callback, once. */
  async check(): Promise<void> {
    const now = this.options.clock.now();
    for (const [key, watch] of this.unclaimed) {
      if (watch.expires > now) continue;
      this.unclaimed.delete(key);
      await this.options.onUnclaimed(watch.message);
    }
    for (const [key, lease] of this.leases) {
      if (lease.expires > now) continue;
      this.leases.delete(key);
      await this.options.onLost(lease);
    }
  }
}
