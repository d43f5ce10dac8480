/**
 * Cron expressions, in UTC: `minute hour day-of-month month day-of-week`,
 * or six fields with seconds first. Each field is `*`, a number, a range
 * `a-b`, a list `a,b`, and any of these with a step `/n`; months and days
 * may be named (`jan`, `mon`), and day-of-week 7 is Sunday as 0 is. As in
 * cron, when both day fields are restricted a day matching either runs.
 */

import { z } from 'zod';

export class CronError extends Error {}

interface Field {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const SECOND: Field = { name: 'second', min: 0, max: 59 };
const MINUTE: Field = { name: 'minute', min: 0, max: 59 };
const HOUR: Field = { name: 'hour', min: 0, max: 23 };
const DOM: Field = { name: 'day of month', min: 1, max: 31 };
const MONTH: Field = { name: 'month', min: 1, max: 12, names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] };
const DOW: Field = { name: 'day of week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] };

export interface Cron {
  /** As written. */
  source: string;
  /** Whether it names seconds (six fields); five fields run at second 0. */
  seconds: boolean;
  second: Set<number>;
  minute: Set<number>;
  hour: Set<number>;
  dom: Set<number>;
  month: Set<number>;
  dow: Set<number>;
  domAny: boolean;
  dowAny: boolean;
}

function value(field: Field, text: string): number {
  const named = field.names?.indexOf(text.toLowerCase()) ?? -1;
  const n = named >= 0 ? named + (field.min === 1 ? 1 : 0) : /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < field.min || n > field.max) throw new CronError(`${field.name}: ${JSON.stringify(text)} is not ${field.min}-${field.max}`);
  return n;
}

function parseField(field: Field, text: string): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const [range, stepText] = part.split('/') as [string, string | undefined];
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new CronError(`${field.name}: step ${JSON.stringify(stepText)} is not a whole number of at least 1`);
    let lo: number;
    let hi: number;
    if (range === '*') [lo, hi] = [field.min, field.max];
    else if (range.includes('-')) {
      const [a, b] = range.split('-') as [string, string];
      [lo, hi] = [value(field, a), value(field, b)];
      if (lo > hi) throw new CronError(`${field.name}: range ${range} runs backwards`);
    } else {
      lo = value(field, range);
      hi = stepText === undefined ? lo : field.max;
    }
    for (let v = lo; v <= hi; v += step) out.add(field === DOW && v === 7 ? 0 : v);
  }
  return out;
}

export function parseCron(source: string): Cron {
  const fields = source.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) throw new CronError(`expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got ${fields.length}`);
  const seconds = fields.length === 6;
  const [s, m, h, dom, month, dow] = seconds ? fields : ['0', ...fields];
  return {
    source,
    seconds,
    second: parseField(SECOND, s!),
    minute: parseField(MINUTE, m!),
    hour: parseField(HOUR, h!),
    dom: parseField(DOM, dom!),
    month: parseField(MONTH, month!),
    dow: parseField(DOW, dow!),
    domAny: dom === '*' || dom === '?',
    dowAny: dow === '*' || dow === '?',
  };
}

function dayMatches(cron: Cron, d: Date): boolean {
  const dom = cron.dom.has(d.getUTCDate());
  const dow = cron.dow.has(d.getUTCDay());
  if (cron.domAny && cron.dowAny) return true;
  if (cron.domAny) return dow;
  if (cron.dowAny) return dom;
  return dom || dow;
}

/** The first tick strictly after `after` (ms since the epoch), or undefined if none comes within five years (`0 0 30 2 *`). */
export function nextTick(cron: Cron, after: number): number | undefined {
  const d = new Date(Math.floor(after / 1000) * 1000 + 1000);
  const limit = after + 5 * 366 * 86_400_000;
  while (d.getTime() <= limit) {
    if (!cron.month.has(d.getUTCMonth() + 1)) {
      d.setUTCMonth(d.getUTCMonth() + 1, 1);
      d.setUTCHours(0, 0, 0, 0);
    } else if (!dayMatches(cron, d)) {
      d.setUTCDate(d.getUTCDate() + 1);
      d.setUTCHours(0, 0, 0, 0);
    } else if (!cron.hour.has(d.getUTCHours())) {
      d.setUTCHours(d.getUTCHours() + 1, 0, 0, 0);
    } else if (!cron.minute.has(d.getUTCMinutes())) {
      d.setUTCMinutes(d.getUTCMinutes() + 1, 0, 0);
    } else if (!cron.second.has(d.getUTCSeconds())) {
      d.setUTCSeconds(d.getUTCSeconds() + 1, 0);
    } else return d.getTime();
  }
  return undefined;
}

/** The last tick in (after, atOrBefore], if any: what a scheduler that was down runs once when it is back. */
export function lastTickBetween(cron: Cron, after: number, atOrBefore: number): number | undefined {
  let last: number | undefined;
  let t = nextTick(cron, after);
  // Walking tick by tick is cheap for minutes; a long outage of a per-second schedule is cut short from the end.
  if (t !== undefined && atOrBefore - after > 86_400_000) t = nextTick(cron, atOrBefore - 86_400_000) ?? t;
  while (t !== undefined && t <= atOrBefore) {
    last = t;
    t = nextTick(cron, t);
  }
  return last;
}

/** `2026-11-28T03:00:00Z` as `20261128T030000Z`, for run ids. */
export function compactTick(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** A project's `schedule`: a cron line this module parses, refused with what is wrong in it. */
export const scheduleSchema = z.string().superRefine((v, ctx) => {
  try {
    parseCron(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `not a cron schedule: ${(err as Error).message}` });
  }
});
