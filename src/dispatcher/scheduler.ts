/**
 * Runs scheduled project files at their ticks. The schedules are tracking's
 * (`schedules/`, written by the dispatcher when a file with "schedule" is
 * pushed), read again whenever the scheduler wakes, so that tracking stays
 * the only record. A tick missed while gitjobs was down is run once when it
 * is back (the last one missed, not one per tick); each run names its tick.
 */
import { lastTickBetween, nextTick, parseCron, type Cron } from '../core/cron.js';
import { SCHEDULES_DIR } from '../core/layout.js';
import type { Logger } from '../core/logger.js';
import type { Clock, GitStore } from '../core/ports.js';
import { parseSchedule, type ScheduleRecord } from '../core/tracking/schedule.js';
import type { DispatchOutcome } from './record-run.js';

/** The longest the scheduler sleeps before reading the schedules again. */
const WAKE_AT_LEAST_EVERY_MS = 60_000;

export interface SchedulerOptions {
  store: Pick<GitStore, 'head' | 'listDir' | 'readFile'>;
  tracking: string;
  clock: Clock;
  log: Logger;
  run: (schedule: ScheduleRecord, tick: string) => Promise<DispatchOutcome>;
}

export class Scheduler {
  private cancelTimer: (() => void) | undefined;
  private stopped = false;
  private waking: Promise<void> = Promise.resolve();
  private readonly crons = new Map<string, Cron>();

  constructor(private readonly options: SchedulerOptions) {}

  /** Runs what was missed while down, then waits for the next tick. */
  start(): Promise<void> {
    return this.wake();
  }

  /** A schedule was added or ended: read them again now. */
  poke(): void {
    if (!this.stopped) void this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    await this.waking;
  }

  private wake(): Promise<void> {
    this.waking = this.waking.then(() => this.tick()).catch((err: Error) => this.options.log.error({ err: err.message }, 'scheduler: could not read or run the schedules; trying again shortly'));
    return this.waking;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    this.cancelTimer?.();
    const { clock, log } = this.options;
    let soonest = clock.now() + WAKE_AT_LEAST_EVERY_MS;
    try {
      for (const schedule of await this.read()) {
        const cron = this.cronOf(schedule.schedule);
        if (!cron) continue;
        const now = clock.now();
        const from = Date.parse(schedule.lastTick ?? schedule.since);
        const due = lastTickBetween(cron, from, now);
        if (due !== undefined) {
          const at = new Date(due).toISOString();
          const outcome = await this.options.run(schedule, at);
          log.info({ file: schedule.file, tick: at, run: outcome.run, outcome: outcome.outcome }, 'scheduled run');
        }
        const next = nextTick(cron, Math.max(now, due ?? 0));
        if (next !== undefined) soonest = Math.min(soonest, next);
      }
    } finally {
      if (!this.stopped) this.cancelTimer = clock.after(Math.max(0, soonest - clock.now()), () => void this.wake());
    }
  }

  private cronOf(expr: string): Cron | undefined {
    let cron = this.crons.get(expr);
    if (!cron) {
      try {
        cron = parseCron(expr);
      } catch (err) {
        this.options.log.warn({ schedule: expr, err: (err as Error).message }, 'scheduler: a schedule in tracking does not parse; skipped');
        return undefined;
      }
      this.crons.set(expr, cron);
    }
    return cron;
  }

  private async read(): Promise<ScheduleRecord[]> {
    const { store, tracking } = this.options;
    const head = await store.head(tracking);
    if (!head) return [];
    const out: ScheduleRecord[] = [];
    for (const name of await store.listDir(tracking, head, SCHEDULES_DIR)) {
      const text = await store.readFile(tracking, head, `${SCHEDULES_DIR}/${name}`);
      if (text !== undefined) out.push(parseSchedule(text));
    }
    return out;
  }
}
