import { workerOnly } from '../../app/gitjobs.js';
import { createLogger } from '../../app/logger.js';
import { installationMasker } from '../../app/secrets.js';
import { UNSANDBOXED_WARNING } from '../../adapters/process/executor.js';
import { amqpUrl, executorKind, positiveInt, settingsFrom, str, graceMs, type Flags } from '../options.js';
import { onShutdown } from '../shutdown.js';

export async function workerCommand(flags: Flags): Promise<number> {
  const settings = settingsFrom(flags);
  const apiToken = process.env.GITJOBS_API_TOKEN || undefined;
  const logger = createLogger(str(flags, 'log-level') ?? process.env.GITJOBS_LOG_LEVEL ?? 'info', installationMasker({ apiToken, amqpUrl: amqpUrl(flags) }));
  const cacheDir = str(flags, 'cache');
  if (executorKind(flags) === 'process') process.stderr.write(`\n${UNSANDBOXED_WARNING}\n\n`);
  const workers = Math.max(1, positiveInt(flags, 'workers', 2));
  const running = await workerOnly({
    workers,
    executor: executorKind(flags),
    amqpUrl: amqpUrl(flags),
    settings,
    logger,
    graceMs: graceMs(flags),
    ...(cacheDir ? { cacheDir } : {}),
    ...(apiToken ? { apiToken } : {}),
  });
  // Signals are handled before the line that says so: whoever reads it may send one at once.
  const stopped = onShutdown(async (signal) => {
    logger.info({ signal }, 'stopping: no new tasks, waiting for running ones');
    await running.stop();
  });
  const ahead = settings.readAhead ? `, holding ${settings.readAhead} more ahead` : '';
  process.stdout.write(`gitjobs worker is taking tasks from ${settings.queues.todo}, ${workers} at a time${ahead}. Ctrl-C stops.\n`);
  await stopped;
  return 0;
}
