/**
 * One `git http-backend` request: the CGI program runs in a process group
 * of its own with the request body on its stdin, and its answer is relayed.
 * A request that goes quiet (no bytes either way for `idleMs`), runs past
 * `totalMs`, or whose client goes away is ended: the whole group gets
 * SIGTERM (git removes its lock files and quarantine on it), then SIGKILL.
 */
import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface CgiLimits {
  /** No bytes in either direction for this long ends the request (ms). */
  idleMs: number;
  /** No request lasts longer than this (ms). */
  totalMs: number;
}

export const CGI_LIMITS: CgiLimits = { idleMs: 60_000, totalMs: 10 * 60_000 };

export interface CgiOutcome {
  /** Why the request was ended early, if it was. */
  ended?: 'idle' | 'total' | 'aborted';
  code: number | null;
}

const KILL_AFTER_MS = 2000;

export function runCgi(env: NodeJS.ProcessEnv, body: IncomingMessage | undefined, res: ServerResponse, limits: CgiLimits = CGI_LIMITS): Promise<CgiOutcome> {
  return new Promise((resolve) => {
    // A group of its own: git http-backend runs receive-pack or upload-pack as its child.
    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let head = Buffer.alloc(0);
    let headersDone = false;
    let stderr = '';
    let ended: CgiOutcome['ended'];
    let exited = false;

    const killGroup = (signal: NodeJS.Signals) => {
      if (exited || child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        /* already gone */
      }
    };
    const end = (why: NonNullable<CgiOutcome['ended']>) => {
      if (exited || ended) return;
      ended = why;
      body?.unpipe(child.stdin);
      child.stdin.destroy();
      killGroup('SIGTERM');
      setTimeout(() => killGroup('SIGKILL'), KILL_AFTER_MS).unref();
    };
    let idle = setTimeout(() => end('idle'), limits.idleMs);
    const active = () => {
      clearTimeout(idle);
      idle = setTimeout(() => end('idle'), limits.idleMs);
    };
    const total = setTimeout(() => end('total'), limits.totalMs);
    // The client went away before the answer was complete.
    res.on('close', () => {
      if (!res.writableFinished) end('aborted');
    });
    body?.on('data', active);
    body?.on('aborted', () => end('aborted'));

    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 8192) stderr += d.toString('utf8');
    });
    child.stdout.on('data', (chunk: Buffer) => {
      active();
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      let sep = head.indexOf('\r\n\r\n');
      let sepLen = 4;
      if (sep < 0) {
        sep = head.indexOf('\n\n');
        sepLen = 2;
      }
      if (sep < 0) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, sep).toString('latin1').split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === 'status') status = parseInt(value, 10) || 200;
        else res.setHeader(name, value);
      }
      res.statusCode = status;
      const rest = head.subarray(sep + sepLen);
      if (rest.length) res.write(rest);
    });
    const finish = (code: number | null) => {
      exited = true;
      clearTimeout(idle);
      clearTimeout(total);
      if (!headersDone && !res.headersSent && !res.destroyed) {
        const why = ended === 'idle' ? `no data for ${limits.idleMs / 1000} s` : ended === 'total' ? `the request took longer than ${limits.totalMs / 1000} s` : `exit ${code}: ${stderr.trim()}`;
        res.writeHead(ended ? 408 : 500, { 'content-type': 'text/plain' });
        res.write(`git http-backend ${ended ? 'ended' : 'failed'} (${why})\n`);
      } else if (ended && !res.destroyed) {
        // The answer had started: cut it, so that the client sees an error rather than a short success.
        res.destroy();
      }
      if (!res.destroyed) res.end();
      resolve({ code, ...(ended ? { ended } : {}) });
    };
    child.on('error', (err) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`git http-backend could not start: ${err.message}\n`);
      exited = true;
      clearTimeout(idle);
      clearTimeout(total);
      resolve({ code: null });
    });
    child.on('close', finish);
    child.stdin.on('error', () => undefined);
    if (body && typeof body.pipe === 'function') body.pipe(child.stdin);
    else child.stdin.end();
  });
}
