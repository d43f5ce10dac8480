/**
 * The Executor port in memory: a task's command is interpreted, not run, by
 * a handful of programs (`echo`, `exit`, `sleep`, `true`, `false`, `cat`,
 * and for files `put`, `fill`, `get`, `sumin`) and `sh -c "a; b"` lines of them;
 * tests can add programs of their own.
 * Timeouts, kills through the abort signal, the output cap and live output
 * behave as in the real executors, on the given clock.
 */
import type { Clock, ExecRequest, ExecResult, Executor, WorkerSource } from '../../core/ports.js';
import { OutputCapture } from '../output-capture.js';
import { overCap } from '../../core/files.js';

export interface ProgramIO {
  out(text: string): void;
  err(text: string): void;
  /** Waits on the clock; rejects when the attempt is killed. */
  sleep(ms: number): Promise<void>;
  env: Record<string, string>;
  /** The task's /out (when it asked for one) and /in (when it needs something), as path -> bytes. */
  out_?: Map<string, Buffer>;
  in?: ReadonlyMap<string, Buffer>;
}

/** A program: its arguments and its IO; resolves with its exit code. */
export type Program = (args: string[], io: ProgramIO) => Promise<number> | number;

class Killed extends Error {}

const BUILTIN: Record<string, Program> = {
  true: () => 0,
  false: () => 1,
  echo: (args, io) => {
    const toErr = args.at(-1) === '>&2';
    const text = (toErr ? args.slice(0, -1) : args).join(' ') + '\n';
    if (toErr) io.err(text);
    else io.out(text);
    return 0;
  },
  exit: (args) => Number(args[0] ?? 0),
  sleep: async (args, io) => {
    await io.sleep(Number(args[0] ?? 0) * 1000);
    return 0;
  },
  /** `cat $NAME` prints an environment variable (tasks read GITJOBS_RUN and friends this way). */
  cat: (args, io) => {
    for (const a of args) io.out(a.startsWith('$') ? `${io.env[a.slice(1)] ?? ''}\n` : '');
    return 0;
  },
  /** `put PATH WORDS...`: writes the words (and a newline) to /out/PATH. */
  put: (args, io) => {
    if (!io.out_) return (io.err('put: no /out\n'), 1);
    io.out_.set(args[0]!, Buffer.from(args.slice(1).join(' ') + '\n'));
    return 0;
  },
  /** `fill PATH BYTES`: writes BYTES bytes to /out/PATH. */
  fill: (args, io) => {
    if (!io.out_) return (io.err('fill: no /out\n'), 1);
    io.out_.set(args[0]!, Buffer.alloc(Number(args[1] ?? 0), 'x'));
    return 0;
  },
  /** `get PATH`: prints /in/PATH. */
  get: (args, io) => {
    const data = io.in?.get(args[0]!);
    if (!data) return (io.err(`get: /in/${args[0]}: no such file\n`), 1);
    io.out(data.toString('utf8'));
    return 0;
  },
  /** `sumin`: prints the sum of the numbers in every `/in/<task>/stdout`. */
  sumin: (_args, io) => {
    let sum = 0;
    for (const [path, data] of io.in ?? []) if (path.endsWith('/stdout')) sum += Number(data.toString('utf8').trim()) || 0;
    io.out(`${sum}\n`);
    return 0;
  },
};

export interface MemoryExecutorOptions {
  clock: Clock;
  programs?: Record<string, Program>;
  /** Workers whose image does not build: `prepare` fails as a broken Dockerfile would. */
  broken?: string[];
}

export class MemoryExecutor implements Executor {
  readonly kind = 'memory';
  /** Every attempt run, in order. */
  readonly started: ExecRequest[] = [];
  /** Attempts running now. */
  running = 0;
  /** None by default; a test gives one to see what a starting worker does with it. */
  reapOrphans?: (host: string) => Promise<number>;
  private readonly programs: Record<string, Program>;

  constructor(private readonly options: MemoryExecutorOptions) {
    this.programs = { ...BUILTIN, ...options.programs };
  }

  async check(): Promise<void> {}

  async prepare(source: WorkerSource): Promise<string> {
    if (this.options.broken?.includes(source.name)) throw new Error(`building workers/${source.name} at config ${source.commit.slice(0, 7)} failed: RUN exited 1`);
    return `memory:${source.name}@${source.commit.slice(0, 12)}`;
  }

  async run(request: ExecRequest): Promise<ExecResult> {
    const { clock } = this.options;
    this.started.push(request);
    this.running++;
    const started = clock.now();
    const capture = new OutputCapture(request.outputCap, request.onOutput);
    let timedOut = false;
    let aborted = false;
    let kill!: () => void;
    const killed = new Promise<never>((_, reject) => (kill = () => reject(new Killed())));
    killed.catch(() => undefined);
    const cancelTimeout = clock.after(request.timeoutMs, () => {
      timedOut = true;
      kill();
    });
    const onAbort = () => {
      aborted = true;
      kill();
    };
    if (request.signal?.aborted) onAbort();
    request.signal?.addEventListener('abort', onAbort);
    const io: ProgramIO = {
      out: (text) => capture.add(Buffer.from(text), true),
      err: (text) => capture.add(Buffer.from(text), false),
      sleep: (ms) => Promise.race([new Promise<void>((r) => clock.after(ms, r)), killed]),
      env: request.env,
      ...(request.out ? { out_: new Map<string, Buffer>() } : {}),
      ...(request.inputs ? { in: new Map(request.inputs.map((f) => [f.path, f.data])) } : {}),
    };
    let exitCode: number | null = 0;
    try {
      for (const { argv, onlyIfOk } of commandsOf(request.argv)) {
        if (timedOut || aborted) break;
        if (onlyIfOk && exitCode !== 0) continue;
        const [name, ...args] = argv;
        const program = this.programs[name!];
        if (!program) {
          io.err(`${name}: not found\n`);
          exitCode = 127;
          break;
        }
        exitCode = await Promise.race([Promise.resolve(program(args, io)), killed]);
        if (name === 'exit') break;
      }
    } catch (err) {
      if (!(err instanceof Killed)) throw err;
    } finally {
      cancelTimeout();
      request.signal?.removeEventListener('abort', onAbort);
      this.running--;
    }
    const out = capture.result();
    const result: ExecResult = { exitCode: timedOut || aborted ? null : exitCode, ...out, durationMs: clock.now() - started, timedOut, ...(aborted ? { aborted } : {}) };
    if (io.out_ && request.out && result.exitCode === 0) {
      result.files = [...io.out_].map(([path, data]) => ({ path, data }));
      const total = result.files.reduce((n, f) => n + f.data.length, 0);
      if (total > request.out.maxBytes) result.outError = overCap(total, request.out.maxBytes);
    }
    return result;
  }
}

/** `["sh", "-c", "a x; b && c"]` as commands, each run after `;` or only after success (`&&`); any other argv is one command. */
function commandsOf(argv: string[]): { argv: string[]; onlyIfOk: boolean }[] {
  if (argv[0] !== 'sh' || argv[1] !== '-c') return [{ argv, onlyIfOk: false }];
  const out: { argv: string[]; onlyIfOk: boolean }[] = [];
  let onlyIfOk = false;
  for (const part of (argv[2] ?? '').split(/(;|&&)/)) {
    if (part === ';' || part === '&&') {
      onlyIfOk = part === '&&';
      continue;
    }
    const words = part.trim().split(/\s+/).filter(Boolean);
    if (words.length) out.push({ argv: words, onlyIfOk });
  }
  return out;
}
