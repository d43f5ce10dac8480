/**
 * A project file with `"schedule"` runs at each tick, not when pushed.
 * Tracking records the schedule when the file is pushed (`schedules/…`),
 * the tick each scheduled run was for in that run's queued commit, and the
 * schedule's end when the file is deleted or pushed without one. A
 * scheduler that was down finds there which tick it missed.
 */
import { scheduleFileOf } from '../layout.js';
import type { FileChange } from '../ports.js';
import { commitMessage } from '../transition.js';
import { json, type Commitable } from './records.js';

export interface ScheduleRecord {
  /** The project file, and the todo commit of the version that has this schedule. */
  file: string;
  todoCommit: string;
  /** Cron, UTC. */
  schedule: string;
  /** When the schedule was recorded: ticks before it are not missed ones. */
  since: string;
  /** The tick of the last run started for it. */
  lastTick?: string;
}

export function scheduleRecorded(record: ScheduleRecord, next: string | undefined): Commitable {
  return {
    changes: [{ path: scheduleFileOf(record.file), content: json(record) }],
    message: commitMessage(
      `${record.file}: scheduled ${JSON.stringify(record.schedule)} (UTC)${next ? `, next run ${next}` : ', which never comes'}`,
      { 'Todo-Commit': record.todoCommit },
      'The file runs at each tick of its schedule, each run recorded like any other, until it is deleted or pushed without "schedule".',
    ),
  };
}

/** The change that records a scheduled run's tick, in the run's queued commit. */
export function tickTaken(record: ScheduleRecord, tick: string): FileChange {
  return { path: scheduleFileOf(record.file), content: json({ ...record, lastTick: tick }) };
}

export function scheduleEnded(file: string, why: string, todoCommit: string): Commitable {
  return { changes: [{ path: scheduleFileOf(file), content: null }], message: commitMessage(`${file}: schedule ended (${why})`, { 'Todo-Commit': todoCommit }) };
}

export function parseSchedule(text: string): ScheduleRecord {
  return JSON.parse(text) as ScheduleRecord;
}
