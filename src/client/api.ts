/**
 * The server's HTTP API, as the CLI reads it: runs and their progress
 * (which the server reads from tracking), and results (from done).
 */
import type { RunView } from '../core/run-reader.js';
import type { RunRecord } from '../core/run.js';
import type { RunSummary } from '../core/tracking-index.js';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A run and how far it has come, without its tasks: what progress bars show. */
export interface RunProgress {
  run: RunRecord;
  progress: { done: number; failed: number; total: number; running: number };
}

/** GET a path of the API as JSON; an answer that is not 2xx is an ApiError with the server's own message. */
export async function getJson<T>(base: string, path: string): Promise<T> {
  const url = `${base.replace(/\/+$/, '')}${path}`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json' } });
  } catch (err) {
    throw new ApiError(0, `cannot reach ${base}: ${(err as Error).message}. Is \`gitjobs up\` running there?`);
  }
  const body = (await res.json().catch(() => ({}))) as T & { error?: string };
  if (!res.ok) throw new ApiError(res.status, body.error ?? `${url}: HTTP ${res.status}`);
  return body;
}

export function runProgress(base: string, run: string): Promise<RunProgress> {
  return getJson(base, `/api/runs/${encodeURIComponent(run)}?tasks=false`);
}

export async function runView(base: string, run: string): Promise<RunView & { progress: RunProgress['progress'] }> {
  return getJson(base, `/api/runs/${encodeURIComponent(run)}?commits=false`);
}

export function runList(base: string): Promise<{ runs: Omit<RunSummary, 'taskStates'>[] }> {
  return getJson(base, '/api/runs');
}

export async function resultText(base: string, run: string): Promise<string | undefined> {
  try {
    return (await getJson<{ text: string }>(base, `/api/runs/${encodeURIComponent(run)}/result`)).text;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}
