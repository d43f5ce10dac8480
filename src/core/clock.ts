import type { Clock } from './ports.js';

/** The Clock port on the process's own time. */
export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(timer);
  },
};

export function isoAt(clock: Clock): string {
  return new Date(clock.now()).toISOString();
}
