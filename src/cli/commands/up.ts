import { up } from '../../app/gitjobs.js';
import { createLogger } from '../../app/logger.js';
import { UNSANDBOXED_WARNING } from '../../adapters/process/executor.js';
import { ensureWebhookSecret, installationMasker } from '../../app/secrets.js';
import { parseDuration } from '../../core/duration.js';
import { amqpUrl, executorKind, home, port, positiveInt, remoteForge, settingsFrom, str, graceMs, UsageError, webhookSecret, type Flags } from '../options.js';
import { onShutdown } from '../shutdown.js';

export async function upCommand(flags: Flags): Promise<number> {
  const settings = settingsFrom(flags);
  const publicUrl = str(flags, 'public-url') ?? process.env.GITJOBS_PUBLIC_URL;
  const forge = remoteForge(flags);
  const homeDir = home(flags);
  // The built-in host makes its own webhook secret; with a forge it comes from `init` or the environment.
  let secret = webhookSecret(homeDir);
  let secretFileNote = '';
  if (!secret && !forge) {
    const made = ensureWebhookSecret(homeDir);
    secret = made.secret;
    secretFileNote = made.file;
  }
  const apiToken = process.env.GITJOBS_API_TOKEN || undefined;
  const amqp = amqpUrl(flags);
  const masker = installationMasker({ webhookSecret: secret, apiToken, forgeToken: forge?.token, amqpUrl: amqp });
  const logLevel = str(flags, 'log-level') ?? process.env.GITJOBS_LOG_LEVEL ?? 'info';
  const logger = createLogger(logLevel, masker);
  const pollRaw = str(flags, 'poll') ?? process.env.GITJOBS_POLL;
  const pollMs = pollRaw === undefined ? undefined : parseDuration(pollRaw);
  if (pollRaw !== undefined && !pollMs) throw new UsageError(`--poll must be a duration such as 30s, not ${JSON.stringify(pollRaw)}`);
  if (pollMs && !forge) throw new UsageError('--poll watches a forge: use it with --forge github or --forge gitea');
  if (executorKind(flags) === 'process' && positiveInt(flags, 'workers', 2) > 0) process.stderr.write(`\n${UNSANDBOXED_WARNING}\n\n`);
  const running = await up({
    home: homeDir,
    ...(forge ? { forge } : {}),
    ...(secret ? { webhookSecret: secret } : {}),
    ...(pollMs ? { pollMs } : {}),
    host: str(flags, 'host') ?? process.env.GITJOBS_HOST ?? '127.0.0.1',
    port: port(flags),
    workers: positiveInt(flags, 'workers', 2),
    executor: executorKind(flags),
    // Tasks are started from a process of their own: spawning never holds up commits.
    workerProcess: { logLevel },
    amqpUrl: amqp,
    settings,
    logger,
    masker,
    graceMs: graceMs(flags),
    ...(apiToken ? { apiToken } : {}),
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
      : [`Webhooks: ${publicUrl ?? running.url}/webhooks/github and /webhooks/gitea take signed deliveries only${secretFileNote ? ` (secret made in ${secretFileNote})` : ''}`]),
    ...(apiToken ? ['Pushing to the built-in host and changing endpoints need GITJOBS_API_TOKEN.'] : []),
    `Push projects to projects/*.json in ${settings.repos.todo}; watch ${settings.repos.tracking}. Ctrl-C stops.`,
    '',
  ];
  // Signals are handled before the lines that say so: whoever reads them may send one at once.
  const stopped = onShutdown(async (signal) => {
    logger.info({ signal }, 'stopping');
    await running.stop();
  });
  process.stdout.write(lines.join('\n'));
  await stopped;
  return 0;
}
