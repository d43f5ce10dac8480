import { describe, expect, it } from 'vitest';
import { compactTick, CronError, lastTickBetween, nextTick, parseCron } from '../../src/core/cron.js';

const at = Date.parse('2026-11-28T06:41:10Z'); // a Saturday
const next = (expr: string, after = at) => {
  const t = nextTick(parseCron(expr), after);
  return t === undefined ? undefined : new Date(t).toISOString();
};

describe('cron', () => {
  it('finds the next tick, in UTC', () => {
    expect(next('0 3 * * *')).toBe('2026-11-29T03:00:00.000Z');
    expect(next('*/15 * * * *')).toBe('2026-11-28T06:45:00.000Z');
    expect(next('*/2 * * * * *')).toBe('2026-11-28T06:41:12.000Z');
    expect(next('0 0 1 jan *')).toBe('2027-01-01T00:00:00.000Z');
    expect(next('0 9 * * mon-fri')).toBe('2026-11-30T09:00:00.000Z');
    expect(next('0 0 * * 7')).toBe('2026-11-29T00:00:00.000Z');
    // Both day fields restricted: either runs (Tuesday the 1st comes before Friday the 4th).
    expect(next('30 4 1,15 * 5')).toBe('2026-12-01T04:30:00.000Z');
    expect(next('0 12 * * *', Date.parse('2026-12-31T12:00:00Z'))).toBe('2027-01-01T12:00:00.000Z');
    expect(next('0 0 30 2 *')).toBeUndefined();
  });

  it('finds the last tick missed between two times, even after a long outage', () => {
    const last = (expr: string, from: string) => new Date(lastTickBetween(parseCron(expr), Date.parse(from), at)!).toISOString();
    expect(last('*/15 * * * *', '2026-11-28T05:00:00Z')).toBe('2026-11-28T06:30:00.000Z');
    expect(last('* * * * * *', '2026-11-20T05:00:00Z')).toBe('2026-11-28T06:41:10.000Z');
    expect(lastTickBetween(parseCron('0 3 * * *'), Date.parse('2026-11-28T03:00:00Z'), at)).toBeUndefined();
  });

  it('says what is wrong', () => {
    const problem = (expr: string) => {
      try {
        parseCron(expr);
      } catch (err) {
        expect(err).toBeInstanceOf(CronError);
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(problem('* * *')).toBe('expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got 3');
    expect(problem('60 * * * *')).toBe('minute: "60" is not 0-59');
    expect(problem('5-1 * * * *')).toBe('minute: range 5-1 runs backwards');
    expect(problem('*/0 * * * *')).toBe('minute: step "0" is not a whole number of at least 1');
    expect(problem('0 0 * foo *')).toBe('month: "foo" is not 1-12');
  });

  it('writes a tick compactly for run ids', () => {
    expect(compactTick(at)).toBe('20261128T064110Z');
  });
});
