/**
 * The lease keeper alone, on a manual clock: when a lease lapses, what a
 * heartbeat does to it, what a finish forgets and remembers, unclaimed
 * attempts, and that it checks again and again until stopped.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/adapters/memory/clock.js';
import type { HeartbeatEvent, TodoMessage } from '../../src/core/channels.js';
import { LeaseKeeper, type Lease } from '../../src/collector/leases.js';

function keeper() {
  const clock = new ManualClock();
  const lost: Lease[] = [];
  const unclaimed: TodoMessage[] = [];
  const k = new LeaseKeeper({ clock, checkEveryMs: 100, onLost: async (l) => void lost.push(l), onUnclaimed: async (m) => void unclaimed.push(m) });
  return { clock, k, lost, unclaimed };
}
const a = { run: 'r', task: 't', attempt: 1 };
const beat = (extra: Partial<HeartbeatEvent> = {}): HeartbeatEvent => ({ v: 1, kind: 'heartbeat', ...a, host: 'h', image: 'i', at: 'x', ...extra });
const message = { v: 1, ...a, worker: 'default', argv: ['true'], timeoutMs: 1000, limits: { memoryBytes: 1, nanoCpus: 1, pids: 8 }, config: { url: 'u', commit: 'c' }, todoCommit: 't' } as TodoMessage;

describe('the lease keeper', () => {
  it('hands over a lease that no heartbeat renewed, once, and keeps checking until stopped', async () => {
    const { clock, k, lost } = keeper();
    const start = clock.now();
    k.start();
    k.hold(a, 1000);
    expect(k.held).toBe(1);
    await clock.advance(900);
    k.heartbeat(beat());
    await clock.advance(900);
    expect(lost).toEqual([]);
    await clock.advance(200);
    expect(lost).toEqual([{ ...a, leaseMs: 1000, expires: start + 1900 }]);
    expect(k.held).toBe(0);
    // A second lease later is checked by the same timer, still running.
    k.hold({ ...a, attempt: 2 }, 300);
    await clock.advance(400);
    expect(lost.map((l) => l.attempt)).toEqual([1, 2]);
    await k.stop();
    k.hold({ ...a, attempt: 3 }, 100);
    await clock.advance(1000);
    expect(lost.map((l) => l.attempt)).toEqual([1, 2]);
  });

  it('starts a lease from a heartbeat that carries one, but not for an attempt already finished', async () => {
    const { clock, k, lost } = keeper();
    k.start();
    k.heartbeat(beat());
    expect(k.held).toBe(0);
    k.heartbeat(beat({ leaseMs: 500 }));
    expect(k.held).toBe(1);
    k.release(a);
    expect(k.held).toBe(0);
    k.heartbeat(beat({ leaseMs: 500 }));
    expect(k.held).toBe(0);
    await clock.advance(1000);
    expect(lost).toEqual([]);
    // Another attempt of the same task is not the finished one.
    k.heartbeat(beat({ attempt: 2, leaseMs: 500 }));
    expect(k.held).toBe(1);
    await k.stop();
  });

  it('remembers the last 4096 finished attempts, no more', () => {
    const { k } = keeper();
    for (let i = 0; i <= 4096; i++) k.release({ run: 'r', task: `t${i}`, attempt: 1 });
    // The oldest was forgotten: a heartbeat with a lease holds it again; the newest are still remembered.
    k.heartbeat(beat({ task: 't0', leaseMs: 100 }));
    expect(k.held).toBe(1);
    k.heartbeat(beat({ task: 't1', leaseMs: 100 }));
    k.heartbeat(beat({ task: 't4096', leaseMs: 100 }));
    expect(k.held).toBe(1);
  });

  it('hands over an attempt recorded running that no worker claims in time, unless one reports it', async () => {
    const { clock, k, unclaimed } = keeper();
    k.start();
    k.watch(message, 500);
    k.watch({ ...message, task: 'u' }, 500);
    k.watch({ ...message, task: 'v' }, 500);
    k.heartbeat(beat());
    k.claimed({ ...a, task: 'u' });
    await clock.advance(400);
    expect(unclaimed).toEqual([]);
    await clock.advance(200);
    expect(unclaimed.map((m) => m.task)).toEqual(['v']);
    await clock.advance(1000);
    expect(unclaimed).toHaveLength(1);
    // Stopping forgets what was watched.
    k.watch({ ...message, task: 'w' }, 100);
    await k.stop();
    await k.check();
    expect(unclaimed).toHaveLength(1);
  });

  it('does not hand over a lease that expires exactly now, only one past it', async () => {
    const { clock, k, lost } = keeper();
    k.hold(a, 100);
    await clock.advance(100);
    await k.check();
    expect(lost).toHaveLength(1);
    k.hold(a, 100);
    await clock.advance(99);
    await k.check();
    expect(lost).toHaveLength(1);
  });
});
