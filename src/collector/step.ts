/**
 * One step of the collector on tracking (apply a report, retry, cancel,
 * recover): its commits are staged on the run book's basis, and what
 * follows from them (telling observers, queueing a retry, dead letters) runs
 * only once they are durable. A DONE message is acked after that.
 */
import type { Commitable } from '../core/tracking/records.js';
import type { GitStore, RunObserver } from '../core/ports.js';
import type { TaskRecord } from '../core/task.js';
import type { RunBook } from './run-book.js';

export class Step {
  private durable: Promise<unknown> = Promise.resolve();
  private readonly effects: (() => unknown)[] = [];
  private firstStaged: number | undefined;

  constructor(
    private readonly store: GitStore,
    private readonly book: RunBook,
    private readonly observer: RunObserver | undefined,
    private readonly now: () => number,
  ) {}

  /** Stages one commit to tracking on the book's basis; `change` is told to observers once it is durable. */
  async commit(commitable: Commitable, change?: { run: string; task: TaskRecord }): Promise<string> {
    const repo = this.book.repo;
    const staged = await this.store.stage(repo, { ...commitable, ...(this.book.basis ? { basis: this.book.basis } : {}) });
    if (this.book.basis) this.book.basis = { ...this.book.basis, head: staged.oid };
    this.firstStaged ??= this.now();
    this.durable = staged.durable;
    if (change) {
      const subject = commitable.message.split('\n', 1)[0]!;
      this.effects.push(() => this.observer?.taskChanged?.({ ...change, commit: staged.oid, subject }));
    }
    return staged.oid;
  }

  /** Runs `fn` once every commit of this step is durable. */
  then(fn: () => unknown): void {
    this.effects.push(fn);
  }

  /** Waits until the step's commits so far are durable, then runs what follows from them. */
  async settle(): Promise<void> {
    await this.durable;
    if (this.firstStaged !== undefined) this.observer?.committed?.(this.book.repo, this.now() - this.firstStaged);
    this.firstStaged = undefined;
    for (const fn of this.effects.splice(0)) await fn();
  }
}
