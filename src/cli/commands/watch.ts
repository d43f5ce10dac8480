import { serverUrl, settingsFrom, str, UsageError, type Flags } from '../options.js';
import { follow } from './submit.js';

/** `gitjobs watch RUN`: progress until the result lands, then the result. */
export async function watchCommand(flags: Flags, positionals: string[]): Promise<number> {
  const run = positionals[0];
  if (!run || positionals.length > 1) throw new UsageError('watch takes one RUN id (see `gitjobs status`)');
  return follow({ url: serverUrl(flags), settings: settingsFrom(flags), run, timeoutRaw: str(flags, 'timeout') ?? '24h' });
}
