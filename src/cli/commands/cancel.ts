import { serverUrl, str, UsageError, type Flags } from '../options.js';

/** `gitjobs cancel RUN`: queued tasks end cancelled, running containers are killed, the result says so. */
export async function cancelCommand(flags: Flags, positionals: string[]): Promise<number> {
  const run = positionals[0];
  if (!run || positionals.length > 1) throw new UsageError('cancel takes one RUN id (see `gitjobs status`)');
  const url = `${serverUrl(flags).replace(/\/+$/, '')}/api/runs/${encodeURIComponent(run)}/cancel`;
  const token = process.env.GITJOBS_API_TOKEN;
  const reason = str(flags, 'reason');
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(reason ? { reason } : {}),
    });
  } catch (err) {
    throw new UsageError(`cannot reach ${serverUrl(flags)}: ${(err as Error).message}. Is \`gitjobs up\` running there?`);
  }
  const body = (await res.json().catch(() => ({}))) as { tasks?: number; error?: string };
  if (res.status === 202) {
    process.stdout.write(`run ${run} cancelled: ${body.tasks} unfinished task${body.tasks === 1 ? '' : 's'} stopped\n`);
    return 0;
  }
  process.stderr.write(`gitjobs cancel: ${body.error ?? `HTTP ${res.status}`}\n`);
  return 1;
}
