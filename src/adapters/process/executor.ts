/**
 * The Executor port as plain subprocesses, for machines without Docker.
 * There is no sandbox: a task can do anything the gitjobs user can.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readTree, removeTree, withReadBack, writeTree } from '../task-files.js';
import type { ExecRequest, ExecResult, Executor, WorkerSource } from '../../core/ports.js';
import { OutputCapture } from '../output-capture.js';

export const UNSANDBOXED_WARNING =
  'WARNING: --executor process runs tasks as plain subprocesses with NO sandbox: no container, no network isolation, no memory or pid limits. Use it only with projects you trust.';

export class ProcessExecutor implements Executor {
  readonly kind = 'process';

  async check(): Promise<void> {}

  /** The worker's folder from the config repository is the task's working directory. */
  async prepare(source: WorkerSource): Promise<string> {
    return source.dir;
  }

  /**
   * A task with files gets folders instead of mounts: `$GITJOBS_OUT` to
   * write in (its cap checked once it exits) and `$GITJOBS_IN`, read-only.
   */
  async run(request: ExecRequest): Promise<ExecResult> {
    if (!request.out && !request.inputs) return this.spawn(request);
    const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'gitjobs-files-'));
    try {
      const env = { ...request.env };
      if (request.inputs) {
        await writeTree(path.join(dir, 'in'), request.inputs);
        env.GITJOBS_IN = path.join(dir, 'in');
      }
      if (request.out) {
        await fs.promises.mkdir(path.join(dir, 'out'));
        env.GITJOBS_OUT = path.join(dir, 'out');
      }
      const result = await this.spawn({ ...request, env });
      if (!request.out || result.exitCode !== 0) return result;
      return withReadBack(result, await readTree(path.join(dir, 'out'), request.out.maxBytes, '$GITJOBS_OUT'));
    } finally {
      await removeTree(dir);
    }
  }

  private spawn(request: ExecRequest): Promise<ExecResult> {
    const started = Date.now();
    const capture = new OutputCapture(request.outputCap, request.onOutput);
    return new Promise((resolve) => {
      const [cmd, ...args] = request.argv;
      const child = spawn(cmd!, args, {
        cwd: request.image,
        detached: true, // its own process group, so a timeout kills its children too
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: os.tmpdir(), LANG: 'C.UTF-8', ...request.env },
      });
      let timedOut = false;
      let aborted = false;
      const killGroup = () => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      };
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup();
      }, request.timeoutMs);
      const abort = () => {
        aborted = true;
        killGroup();
      };
      if (request.signal?.aborted) abort();
      request.signal?.addEventListener('abort', abort);
      child.stdout.on('data', (d: Buffer) => capture.add(d, true));
      child.stderr.on('data', (d: Buffer) => capture.add(d, false));
      let spawnError: Error | undefined;
      child.on('error', (err) => (spawnError = err));
      child.on('close', (code) => {
        clearTimeout(timer);
        request.signal?.removeEventListener('abort', abort);
        const out = capture.result();
        if (spawnError) out.output += `gitjobs: could not start ${cmd}: ${spawnError.message}\n`;
        resolve({ exitCode: timedOut || aborted ? null : spawnError ? ((spawnError as NodeJS.ErrnoException).code === 'EACCES' ? 126 : 127) : code, ...out, durationMs: Date.now() - started, timedOut, ...(aborted ? { aborted } : {}) });
      });
    });
  }
}
