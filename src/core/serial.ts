/**
 * Runs async steps one at a time, in the order they were asked for; a step
 * that fails does not stop the ones after it. Read-modify-write on a
 * repository, a push's heads diff, commit statuses in order: all use it.
 */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn);
    this.tail = next.catch(() => undefined);
    return next;
  }

  /** Resolves once every step asked for so far has ended. */
  idle(): Promise<unknown> {
    return this.tail;
  }
}
