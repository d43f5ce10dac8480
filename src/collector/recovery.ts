/**
 * On start, tracking (the system of record) is reconciled with the queues,
 * as after a crash or with the queues deleted:
 *
 *  - a task recorded queued is sent to TODO again (after its backoff, for a
 *    retry), unless it is a first attempt of a run whose messages the broker
 *    confirmed (`published.json`) and the TODO queue was not lost since; a
 *    copy that does run twice is abandoned (intake.ts);
 *  - a running attempt held by its message is queued again only if no worker
 *    reports holding it within three heartbeats; a leased one is held until
 *    its lease runs out, when it counts as lost;
 *  - a failed attempt that never got its retry is queued again;
 *  - a run whose tasks are all final but which has no result gets it.
 */
import type { Logger } from '../core/logger.js';
import type { Clock, Queue } from '../core/ports.js';
import type { Settings } from '../core/settings.js';
import { isFinal } from '../core/task.js';
import type { Intake } from './intake.js';
import type { LeaseKeeper } from './leases.js';
import type { Retries } from './retries.js';
import type { RunBook } from './run-book.js';
import type { Step } from './step.js';

export interface RecoveryReport {
  republished: number;
  /** Queued first attempts left alone: the broker confirmed their messages and the queue still holds them. */
  held: number;
  /** Running attempts held by a message, queued again only if no worker reports them. */
  watched: number;
  completed: number;
  requeued: number;
}

export function emptyReport(): RecoveryReport {
  return { republished: 0, held: 0, watched: 0, completed: 0, requeued: 0 };
}

export async function recoverRun(
  ctx: { clock: Clock; settings: Settings; intake: Intake; leases: LeaseKeeper; retries: Retries; queue: Queue },
  step: Step,
  book: RunBook,
  runId: string,
  report: RecoveryReport,
  log: Logger,
): Promise<void> {
  const live = await book.load(runId);
  if (!live || live.run.doneCommit) return;
  const { clock, settings, leases, retries } = ctx;
  for (const task of live.tasks.values()) {
    if (isFinal(task)) continue;
    const attempt = { run: runId, task: task.id, attempt: task.attempts };
    if (task.state === 'waiting') {
      // afterChange below releases or skips it if what it needs has settled.
      continue;
    } else if (task.state === 'failed') {
      report.requeued++; // afterChange below queues it again
    } else if (task.state === 'running' && task.leaseMs) {
      // Held by heartbeats, not by a message: if its worker is alive they resume; if not, the lease runs out.
      leases.hold(attempt, task.leaseMs);
    } else if (task.state === 'running') {
      // Held by its message: a live worker has it (and heartbeats say so), or the broker gives it to another
      // when that worker's connection drops. Queued again only if no worker reports it within three heartbeats.
      leases.watch(retries.messageFor(live.run, { ...task, attempts: task.attempts - 1 }), 3 * settings.heartbeatMs);
      report.watched++;
    } else if (task.attempts === 0 && !task.releasedAt && live.run.publishedAt && !ctx.queue.lost('todo')) {
      // A first attempt whose message the broker confirmed, in a queue that is still there: it is in the queue,
      // or in a worker's hands. Sending it again would only run it twice.
      report.held++;
    } else {
      // queued: the next attempt, whose message may never have been sent (a crash between the commit and the
      // publish, a retry waiting out its backoff), or went with its queue.
      const message = retries.messageFor(live.run, task);
      const wait = task.notBefore ? Date.parse(task.notBefore) - clock.now() : 0;
      step.then(() => retries.sendLater(message, wait));
      report.republished++;
    }
  }
  await ctx.intake.afterChange(step, book, live, false, log);
  if (live.run.doneCommit) report.completed++;
}
