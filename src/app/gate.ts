/**
 * Opens once startup is done. The server listens before the collector has
 * recovered and the dispatcher exists (their URLs need its port): a webhook,
 * a cancel or a re-run arriving meanwhile waits here instead of failing.
 */
export class Gate<T> {
  private open!: (value: T) => void;
  private readonly opened: Promise<T> = new Promise((resolve) => (this.open = resolve));

  /** Resolves with what `openWith` was given, once it has been. */
  get ready(): Promise<T> {
    return this.opened;
  }

  openWith(value: T): void {
    this.open(value);
  }
}
