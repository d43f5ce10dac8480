/**
 * What happens between attempts: a failed attempt with attempts left is
 * recorded `failed -> queued` and sent to TODO again once its backoff has
 * passed; a task out of attempts has its last message sent to DEAD for an
 * operator. Both only after the transition is durable.
 */
import { todoFor, type TodoMessage } from '../core/channels.js';
import type { Logger } from '../core/logger.js';
import type { Clock, Queue } from '../core/ports.js';
import type { RunRecord } from '../core/run.js';
import { retryDelay, type Settings } from '../core/settings.js';
import { backoffFor } from '../core/retry.js';
import type { TaskRecord } from '../core/task.js';
import { requeue } from '../core/tracking/task-steps.js';
import type { RunBook, LiveRun } from './run-book.js';
import type { Step } from './step.js';

export interface RetriesOptions {
  queue: Queue;
  clock: Clock;
  settings: Settings;
  configUrl: string;
  log: Logger;
  /** Sends a task's message, with its inputs when it has needs (core/inputs.ts sendWithInputs). */
  send?: (message: TodoMessage) => Promise<void>;
}

export class Retries {
  private readonly timers = new Set<() => void>();

  constructor(private readonly options: RetriesOptions) {}

  /** The TODO message of a task's next attempt (with the result cache's candidates for it, if any). */
  messageFor(run: RunRecord, task: TaskRecord, candidates: Parameters<typeof todoFor>[4] = []): TodoMessage {
    return todoFor(run, task, this.options.settings.limits, this.options.configUrl, candidates);
  }

  /** failed -> queued, then the next attempt goes to TODO once its backoff has passed. */
  async retry(step: Step, book: RunBook, live: LiveRun, task: TaskRecord, log: Logger): Promise<void> {
    const { settings, clock } = this.options;
    const delay = backoffFor(task, task.attempts, (n) => retryDelay(settings, n));
    const again = requeue(live.run, task, new Date(clock.now()).toISOString(), delay);
    await step.commit(again, { run: live.run.id, task: again.task });
    book.setTask(live, again.task);
    log.info({ next: again.task.attempts + 1, delayMs: delay }, 'task failed; retrying after backoff');
    const message = this.messageFor(live.run, again.task);
    step.then(() => this.sendLater(message, delay));
  }

  /** A task out of attempts: its last message goes where an operator can look at it. */
  deadLetter(step: Step, run: RunRecord, task: TaskRecord, log: Logger): void {
    const last = this.messageFor(run, { ...task, attempts: task.attempts - 1 });
    const reason = task.error ?? `exit ${task.exitCode}`;
    step.then(async () => {
      await this.options.queue.publish('dead', { ...last, reason, failedAt: task.finishedAt ?? new Date(this.options.clock.now()).toISOString() });
      log.warn({ reason, attempts: task.attempts }, 'task failed for good; message sent to the dead-letter queue');
    });
  }

  /** Sends a TODO message after `delayMs` (now when it is not positive). A failure is logged: the next start recovers it. */
  sendLater(message: TodoMessage, delayMs: number): void {
    const publish = this.options.send ?? ((m: TodoMessage) => this.options.queue.publish('todo', m));
    const send = () =>
      publish(message).catch((err: Error) => this.options.log.error({ run: message.run, task: message.task, err: err.message }, 'could not queue a retry; the next start recovers it'));
    if (delayMs <= 0) {
      void send();
      return;
    }
    const cancel = this.options.clock.after(delayMs, () => {
      this.timers.delete(cancel);
      void send();
    });
    this.timers.add(cancel);
  }

  /** Retries waiting out their backoff are in tracking as queued: the next start sends them. */
  stop(): void {
    for (const cancel of this.timers) cancel();
    this.timers.clear();
  }
}
