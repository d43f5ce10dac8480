import { up } from '../../app/gitjobs.js';
import { createLogger } from '../../app/logger.js';
import { parseDuration } from '../../core/duration.js';
import { amqpUrl, executorKind, home, port, positiveInt, remoteForge, settingsFrom, str, graceMs, UsageError, webhookSecret, type Flags } from '../options.js';
import { onShutdown } from '../shutdown.js';

export async function upCommand(flags: Flags): Promise<number> {
  const settings = settingsFrom(flags);
  const logger = createLogger(str(flags, 'log-level') ?? process.env.GITJOBS_LOG_LEVEL ?? 'info');
  const publicUrl = str(flags, 'public-url') ?? process.env.GITJOBS_PUBLIC_URL;
  const forge = remoteForge(flags);
  const homeDir = home(flags);
  const secret = webhookSecret(homeDir);
  const pollRaw = str(flags, 'poll') ?? process.env.GITJOBS_POLL;
  const pollMs = pollRaw === undefined ? undefined : parseDuration(pollRaw);
  if (pollRaw !== undefined && !pollMs) throw new UsageError(`--poll must be a duration such as 30s, not ${JSON.stringify(pollRaw)}`);
  if (pollMs && !forge) throw new UsageError('--poll watches a forge: use it with --forge github or --forge gitea');
  const running = await up({
    home: homeDir,
    ...(forge ? { forge } : {}),
    ...(secret ? { webhookSecret: secret } : {}),
    ...(pollMs ? { pollMs } : {}),
    host: str(flags, 'host') ?? process.env.GITJOBS_HOST ?? '127.0.0.1',
    port: port(flags),
    workers: positiveInt(flags, 'workers', 2),
    executor: executorKind(flags),
    amqpUrl: amqpUrl(flags),
    settings,
    logger,
    graceMs: graceMs(flags),
    ...(process.env.GITJOBS_API_TOKEN ? { apiToken: process.env.GITJOBS_API_TOKEN } : {}),
    ...(publicUrl ? { publicUrl } : {}),
  });
  const lines = [
    `gitjobs is up at ${running.url}`,
    '',
    forge ? `Repositories on ${forge.kind} (${forge.owner}); read-only mirrors here:` : 'Clone URLs:',
    ...Object.entries(settings.repos).map(([role, name]) => `  ${role.padEnd(9)} ${running.forge.cloneUrl(name)}`),
    '',
    ...(forge
      ? [`Webhooks: ${publicUrl ?? running.url}/webhooks/${forge.kind} (${secret ? 'signed deliveries only' : 'WARNING: no secret set, unsigned deliveries accepted'})${pollMs ? `; polling every ${pollRaw}` : ''}`]
      : []),
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
