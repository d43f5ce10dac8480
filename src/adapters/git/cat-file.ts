/**
 * Reads objects through one long-lived `git cat-file --batch-command` per
 * repository: git's own reader (packs mapped, deltas cached, new packs found
 * as they appear), with requests pipelined over its pipes. `info` gives an
 * object's type and size without its content, so that a size can be checked
 * before anything is read. `contentsOf` asks for many objects in one write
 * and answers them in one array: no promise or request per object, which
 * matters when a status reads 10,000 task files.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

export interface ObjectInfo {
  oid: string;
  type: string;
  size: number;
}

type Answer = (ObjectInfo & { data?: Buffer }) | undefined;

/** One request line's answer, or (with `many`) the answers of that many lines, in order. */
type Request = { reject: (err: Error) => void } & (
  | { contents: boolean; resolve: (value: Answer) => void }
  | { contents: true; many: { left: number; answers: Answer[] }; resolve: (value: Answer[]) => void }
);

export class CatFile {
  private child: ChildProcessWithoutNullStreams | undefined;
  private readonly waiting: Request[] = [];
  private buffer: Buffer = Buffer.alloc(0);
  /** The header of the object being read, while its content is still coming. */
  private header: ObjectInfo | undefined;
  private closed = false;

  constructor(private readonly gitdir: string) {}

  /** Type and size of `spec` (an object id, or `<commit>:<path>`), or undefined when there is no such object. */
  info(spec: string): Promise<ObjectInfo | undefined> {
    return this.ask('info', spec);
  }

  /** The object itself. */
  contents(spec: string): Promise<(ObjectInfo & { data: Buffer }) | undefined> {
    return this.ask('contents', spec) as Promise<(ObjectInfo & { data: Buffer }) | undefined>;
  }

  /** Many objects at once, in order: undefined for each that is not there. */
  contentsOf(specs: readonly string[]): Promise<((ObjectInfo & { data: Buffer }) | undefined)[]> {
    if (this.closed) return Promise.reject(new Error(`${this.gitdir}: object reader is closed`));
    if (specs.length === 0) return Promise.resolve([]);
    const bad = specs.find((spec) => /[\n\r]/.test(spec));
    if (bad !== undefined) return Promise.reject(new Error(`not an object name: ${JSON.stringify(bad)}`));
    const child = this.process();
    if (this.waiting.length === 0) this.hold(child, true);
    return new Promise((resolve, reject) => {
      this.waiting.push({ contents: true, many: { left: specs.length, answers: [] }, resolve: resolve as (value: Answer[]) => void, reject });
      child.stdin.write(`contents ${specs.join('\ncontents ')}\n`);
    });
  }

  close(): void {
    this.closed = true;
    this.child?.stdin.end();
    this.child = undefined;
  }

  private ask(command: 'info' | 'contents', spec: string): Promise<(ObjectInfo & { data?: Buffer }) | undefined> {
    if (this.closed) return Promise.reject(new Error(`${this.gitdir}: object reader is closed`));
    if (/[\n\r]/.test(spec)) return Promise.reject(new Error(`not an object name: ${JSON.stringify(spec)}`));
    const child = this.process();
    if (this.waiting.length === 0) this.hold(child, true);
    return new Promise((resolve, reject) => {
      this.waiting.push({ contents: command === 'contents', resolve, reject });
      child.stdin.write(`${command} ${spec}\n`);
    });
  }

  /** The reader keeps the process alive only while it is waiting for an answer. */
  private hold(child: ChildProcessWithoutNullStreams, busy: boolean): void {
    for (const handle of [child, child.stdin, child.stdout, child.stderr] as unknown as { ref(): void; unref(): void }[]) {
      if (busy) handle.ref();
      else handle.unref();
    }
  }

  private process(): ChildProcessWithoutNullStreams {
    if (this.child) return this.child;
    const child = spawn('git', ['--git-dir', this.gitdir, 'cat-file', '--batch-command'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
      this.drain();
    });
    const fail = (err: Error) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.buffer = Buffer.alloc(0);
      this.header = undefined;
      for (const r of this.waiting.splice(0)) r.reject(err);
    };
    child.on('error', fail);
    child.on('exit', (code) => fail(new Error(`git cat-file in ${this.gitdir} exited (${code}): ${stderr.trim()}`)));
    child.stdin.on('error', () => undefined);
    this.hold(child, false);
    this.child = child;
    return child;
  }

  private drain(): void {
    for (;;) {
      const request = this.waiting[0];
      if (!request) {
        if (this.child) this.hold(this.child, false);
        return;
      }
      if (!this.header) {
        const eol = this.buffer.indexOf(0x0a);
        if (eol < 0) return;
        const line = this.buffer.toString('utf8', 0, eol);
        this.buffer = this.buffer.subarray(eol + 1);
        const m = /^([0-9a-f]{40}) (\S+) (\d+)$/.exec(line);
        if (!m) {
          // `<spec> missing` or `<spec> ambiguous`: no such object.
          this.answer(request, undefined);
          continue;
        }
        this.header = { oid: m[1]!, type: m[2]!, size: Number(m[3]) };
        if (!request.contents) {
          const info = this.header;
          this.header = undefined;
          this.answer(request, info);
          continue;
        }
      }
      // The content, then a newline.
      if (this.buffer.length < this.header.size + 1) return;
      const data = Buffer.from(this.buffer.subarray(0, this.header.size));
      this.buffer = this.buffer.subarray(this.header.size + 1);
      const info = this.header;
      this.header = undefined;
      this.answer(request, { oid: info.oid, type: info.type, size: info.size, data });
    }
  }

  /** The next answer for the request at the head of the queue; it leaves the queue once it has all of its answers. */
  private answer(request: Request, value: Answer): void {
    if (!('many' in request)) {
      this.waiting.shift();
      request.resolve(value);
      return;
    }
    request.many.answers.push(value);
    if (--request.many.left > 0) return;
    this.waiting.shift();
    request.resolve(request.many.answers);
  }
}
