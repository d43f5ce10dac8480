/**
 * Captures a task's stdout and stderr up to a cap. Past the cap the rest is
 * counted, not kept, and a marker says how much was dropped.
 */
import { Writable } from 'node:stream';

export class OutputCapture {
  private readonly combined: Buffer[] = [];
  private readonly out: Buffer[] = [];
  private combinedBytes = 0;
  private outBytes = 0;
  private dropped = 0;

  constructor(
    private readonly cap: number,
    /** Sees the kept output as it comes. */
    private readonly onData?: (chunk: Buffer) => void,
  ) {}

  readonly stdout = this.sink(true);
  readonly stderr = this.sink(false);

  private sink(isStdout: boolean): Writable {
    return new Writable({
      write: (chunk: Buffer, _enc, done) => {
        this.add(chunk, isStdout);
        done();
      },
    });
  }

  add(chunk: Buffer, isStdout: boolean): void {
    const room = Math.max(0, this.cap - this.combinedBytes);
    if (room < chunk.length) this.dropped += chunk.length - room;
    if (room > 0) {
      const kept = chunk.subarray(0, room);
      this.combined.push(kept);
      this.combinedBytes += kept.length;
      this.onData?.(kept);
    }
    if (isStdout) {
      const outRoom = Math.max(0, this.cap - this.outBytes);
      if (outRoom > 0) {
        const kept = chunk.subarray(0, outRoom);
        this.out.push(kept);
        this.outBytes += kept.length;
      }
    }
  }

  get truncated(): boolean {
    return this.dropped > 0;
  }

  result(): { stdout: string; output: string; truncated: boolean } {
    let output = Buffer.concat(this.combined).toString('utf8');
    if (this.dropped > 0) output += `\n[gitjobs: output cut at ${this.cap} bytes; ${this.dropped} more bytes dropped]\n`;
    return { stdout: Buffer.concat(this.out).toString('utf8'), output, truncated: this.truncated };
  }
}
