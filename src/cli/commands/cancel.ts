import { serverUrl, str, UsageError, type Flags } from '../options.js';

/** POSTs to an endpoint of `up` that changes something, with GITJOBS_API_TOKEN as bearer token when it is set. */
export async function postToServer(flags: Flags, path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const url = `${serverUrl(flags).replace(/\/+$/, '')}${path}`;
  const token = process.env.GITJOBS_API_TOKEN;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
  } catch (err) {
    throw new UsageError(`cannot reach ${serverUrl(flags)}: ${(err as Error).message}. Is \`gitjobs up\` running there?`);
  }
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
}

/** `gitjobs cancel RUN`: queued tasks end cancelled, running containers are killed, the result says so. */
export async function cancelCommand(flags: Flags, positionals: string[]): Promise<number> {
  const run = positionals[0];
  if (!run || positionals.length > 1) throw new UsageError('cancel takes one RUN id (see `gitjobs status`)');
  const reason = str(flags, 'reason');
  const res = await postToServer(flags, `/api/runs/${encodeURIComponent(run)}/cancel`, reason ? { reason } : {});
  if (res.status === 202) {
    const tasks = res.body.tasks as number;
    process.stdout.write(`run ${run} cancelled: ${tasks} unfinished task${tasks === 1 ? '' : 's'} stopped\n`);
    return 0;
  }
  process.stderr.write(`gitjobs cancel: ${(res.body.error as string | undefined) ?? `HTTP ${res.status}`}\n`);
  return 1;
}
