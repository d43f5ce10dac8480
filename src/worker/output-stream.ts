/**
 * A running task's output, sent on the OUTPUT fanout a few times a second
 * (and at once past 64 KiB), in order, for live logs. Losing some is
 * harmless: the whole output is in the attempt's outcome.
 */
import { StringDecoder } from 'node:string_decoder';
import type { Clock, Queue } from '../core/ports.js';

const FLUSH_EVERY_MS = 250;
const FLUSH_AT_CHARS = 64 * 1024;

export class OutputStream {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';
  private seq = 0;
  private sending: Promise<unknown> = Promise.resolve();
  private cancelTimer: (() => void) | undefined;
  private readonly attempt: { run: string; task: string; attempt: number };

  constructor(
    private readonly queue: Queue,
    private readonly clock: Clock,
    of: { run: string; task: string; attempt: number },
  ) {
    this.attempt = { run: of.run, task: of.task, attempt: of.attempt };
    const tick = () => {
      void this.flush();
      this.cancelTimer = this.clock.after(FLUSH_EVERY_MS, tick);
    };
    this.cancelTimer = this.clock.after(FLUSH_EVERY_MS, tick);
  }

  readonly write = (chunk: Buffer): void => {
    this.pending += this.decoder.write(chunk);
    if (this.pending.length > FLUSH_AT_CHARS) void this.flush();
  };

  private flush(): Promise<unknown> {
    if (!this.pending) return this.sending;
    const data = this.pending;
    this.pending = '';
    const message = { ...this.attempt, seq: this.seq++, data };
    this.sending = this.sending.then(() => this.queue.broadcast('output', message).catch(() => undefined));
    return this.sending;
  }

  /** Sends what is left and stops. */
  async end(): Promise<void> {
    this.cancelTimer?.();
    this.pending += this.decoder.end();
    await this.flush();
  }
}
