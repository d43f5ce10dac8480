/** Running attempts at most `size` at a time; the others wait their turn, in order. */
export class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly size: number) {
    this.free = size;
  }

  get busy(): number {
    return this.size - this.free;
  }

  /** Resolves with a release function once a slot is free; false when `signal` aborted first. */
  acquire(signal?: AbortSignal): Promise<(() => void) | false> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve) => {
      const turn = () => {
        signal?.removeEventListener('abort', give);
        resolve(this.releaser());
      };
      const give = () => {
        const i = this.waiting.indexOf(turn);
        if (i >= 0) this.waiting.splice(i, 1);
        resolve(false);
      };
      signal?.addEventListener('abort', give, { once: true });
      this.waiting.push(turn);
    });
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}
