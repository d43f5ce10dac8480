import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/core/duration.js';
import { firstRunOf, isValidId, nextRerunId, runIdFor } from '../../src/core/ids.js';

describe('run ids', () => {
  it('are stable for a (file, commit) pair and differ otherwise', () => {
    const c = '0123456789abcdef0123456789abcdef01234567';
    expect(runIdFor('projects/q12.json', c)).toMatch(/^q12-[0-9a-f]{7}$/);
    expect(runIdFor('projects/q12.json', c)).toBe(runIdFor('projects/q12.json', c));
    expect(runIdFor('projects/q12.json', c)).not.toBe(runIdFor('projects/q12.json', 'f' + c.slice(1)));
    expect(runIdFor('projects/sub/q12.json', c)).not.toBe(runIdFor('projects/q12.json', c));
    expect(isValidId(runIdFor('projects/../weird name!.json', c))).toBe(true);
  });
  it('number re-runs from the first run, after the highest one tracking has', () => {
    expect(nextRerunId('q12-1a2b3c4', ['q12-1a2b3c4', 'other-1234567.r5'])).toBe('q12-1a2b3c4.r1');
    expect(nextRerunId('q12-1a2b3c4', ['q12-1a2b3c4', 'q12-1a2b3c4.r1', 'q12-1a2b3c4.r3'])).toBe('q12-1a2b3c4.r4');
    expect(nextRerunId('q12-1a2b3c4.r3', ['q12-1a2b3c4', 'q12-1a2b3c4.r1', 'q12-1a2b3c4.r3'])).toBe('q12-1a2b3c4.r4');
    expect(firstRunOf('q12-1a2b3c4.r12')).toBe('q12-1a2b3c4');
    const longest = runIdFor(`projects/${'x'.repeat(80)}.json`, '0'.repeat(40));
    expect(isValidId(nextRerunId(longest, [`${longest}.r9999`]))).toBe(true);
  });
  it('refuse paths and dots', () => {
    expect(isValidId('a/b')).toBe(false);
    expect(isValidId('..')).toBe(false);
    expect(isValidId('a..b')).toBe(false);
    expect(isValidId('x'.repeat(65))).toBe(false);
    expect(isValidId('task_1.v2-a')).toBe(true);
  });
});

describe('durations', () => {
  it('parse and format', () => {
    expect(parseDuration('60s')).toBe(60_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration(2)).toBe(2000);
    expect(parseDuration('soon')).toBeUndefined();
    expect(parseDuration('0s')).toBeUndefined();
    // Found by fuzzing: a positive number that rounds to 0 ms is no timeout.
    expect(parseDuration(5e-324)).toBeUndefined();
    expect(parseDuration('0.0001s')).toBeUndefined();
    expect(formatDuration(410)).toBe('0.41s');
    expect(formatDuration(125_000)).toBe('2m05s');
  });
});
