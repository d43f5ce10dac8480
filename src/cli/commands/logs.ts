import { readEvents } from '../../client/sse.js';
import { serverUrl, UsageError, type Flags } from '../options.js';

/**
 * `gitjobs logs RUN TASK [--follow]`: a task's output. A finished task's whole
 * log; a running one's output so far, and with --follow everything until it ends.
 */
export async function logsCommand(flags: Flags, positionals: string[]): Promise<number> {
  const [run, task] = positionals;
  if (!run || !task || positionals.length > 2) throw new UsageError('logs takes RUN and TASK');
  const url = `${serverUrl(flags).replace(/\/+$/, '')}/api/runs/${encodeURIComponent(run)}/tasks/${encodeURIComponent(task)}/log`;
  const controller = new AbortController();
  let res: Response;
  try {
    res = await fetch(url, { signal: controller.signal, headers: { accept: 'text/event-stream' } });
  } catch (err) {
    throw new UsageError(`cannot reach ${serverUrl(flags)}: ${(err as Error).message}`);
  }
  if (!res.ok) {
    process.stderr.write(`gitjobs logs: ${((await res.json().catch(() => ({}))) as { error?: string }).error ?? `HTTP ${res.status}`}\n`);
    return 1;
  }
  const followIt = Boolean(flags.follow);
  let quiet: NodeJS.Timeout | undefined;
  // Without --follow, stop once what was there has come (a moment of quiet).
  const arm = () => {
    if (followIt) return;
    clearTimeout(quiet);
    quiet = setTimeout(() => controller.abort(), 400);
  };
  arm();
  try {
    for await (const { event, data } of readEvents(res.body as unknown as AsyncIterable<Uint8Array>)) {
      if (event === 'output' || event === 'log') process.stdout.write(data as string);
      else if (event === 'attempt') process.stdout.write(`--- attempt ${(data as { attempt: number }).attempt} ---\n`);
      else if (event === 'end') {
        controller.abort();
        return 0;
      }
      arm();
    }
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  } finally {
    clearTimeout(quiet);
  }
  return 0;
}
