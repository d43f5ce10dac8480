/**
 * Cancelling a run: every task not yet final ends `cancelled` (one commit
 * each), workers are told to kill the run's running attempts, and the
 * result records the cancellation.
 */
import type { Logger } from '../core/logger.js';
import type { Clock, Queue } from '../core/ports.js';
import { isRunFinal } from '../core/run.js';
import { isFinal } from '../core/task.js';
import { cancelTask } from '../core/tracking/task-steps.js';
import type { Intake } from './intake.js';
import type { RunBook } from './run-book.js';
import type { Step } from './step.js';

export type CancelOutcome = { outcome: 'cancelled'; tasks: number } | { outcome: 'unknown' } | { outcome: 'finished'; state: string };

export async function cancelRun(
  ctx: { queue: Queue; clock: Clock; intake: Intake },
  step: Step,
  book: RunBook,
  runId: string,
  reason: string,
  log: Logger,
): Promise<CancelOutcome> {
  const live = await book.load(runId);
  if (!live) return { outcome: 'unknown' };
  if (isRunFinal(live.run)) return { outcome: 'finished', state: live.run.state };
  live.run = { ...live.run, cancelled: reason };
  let tasks = 0;
  for (const task of [...live.tasks.values()]) {
    if (isFinal(task)) continue;
    const c = cancelTask(live.run, task, reason, new Date(ctx.clock.now()).toISOString());
    await step.commit(c, { run: runId, task: c.task });
    book.setTask(live, c.task);
    tasks++;
  }
  await ctx.queue.broadcast('control', { kind: 'cancel', run: runId });
  log.info({ tasks, reason }, 'run cancelled');
  await ctx.intake.afterChange(step, book, live, false, log);
  return { outcome: 'cancelled', tasks };
}
