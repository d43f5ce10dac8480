import { up } from '../../app/gitjobs.js';
import { createLogger } from '../../app/logger.js';
import { amqpUrl, executorKind, home, port, positiveInt, settingsFrom, str, type Flags } from '../options.js';
import { onShutdown } from '../shutdown.js';

export async function upCommand(flags: Flags): Promise<number> {
  const settings = settingsFrom(flags);
  const logger = createLogger(str(flags, 'log-level') ?? process.env.GITJOBS_LOG_LEVEL ?? 'info');
  const publicUrl = str(flags, 'public-url') ?? process.env.GITJOBS_PUBLIC_URL;
  const running = await up({
    home: home(flags),
    host: str(flags, 'host') ?? process.env.GITJOBS_HOST ?? '127.0.0.1',
    port: port(flags),
    workers: positiveInt(flags, 'workers', 2),
    executor: executorKind(flags),
    amqpUrl: amqpUrl(flags),
    settings,
    logger,
    ...(publicUrl ? { publicUrl } : {}),
  });
  const lines = [
    `gitjobs is up at ${running.url}`,
    '',
    'Clone URLs:',
    ...Object.entries(settings.repos).map(([role, name]) => `  ${role.padEnd(9)} ${running.forge.cloneUrl(name)}`),
    '',
    `Push projects to projects/*.json in ${settings.repos.todo}; watch ${settings.repos.tracking}. Ctrl-C stops.`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
  await onShutdown(async (signal) => {
    logger.info({ signal }, 'stopping');
    await running.stop();
  });
  return 0;
}
