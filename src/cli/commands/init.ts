import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRemoteForge } from '../../app/gitjobs.js';
import { TEMPLATE_DIR } from '../../adapters/builtin/forge.js';
import { provision } from '../../adapters/forges/provision.js';
import { home, remoteForge, secretFile, settingsFrom, str, UsageError, webhookSecret, type Flags } from '../options.js';

/** `gitjobs init --forge github|gitea --owner OWNER`: the four repositories and their webhooks on a forge. */
export async function initCommand(flags: Flags): Promise<number> {
  const forgeOptions = remoteForge(flags);
  if (!forgeOptions) throw new UsageError('init needs --forge github or --forge gitea (the built-in host creates its repositories by itself)');
  const publicUrl = str(flags, 'public-url') ?? process.env.GITJOBS_PUBLIC_URL;
  if (!publicUrl) throw new UsageError('init needs --public-url: the address where the forge can reach `gitjobs up` to deliver webhooks');
  const settings = settingsFrom(flags);
  const homeDir = home(flags);
  fs.mkdirSync(homeDir, { recursive: true });
  let secret = webhookSecret(homeDir);
  let saved = false;
  if (!secret) {
    secret = randomBytes(32).toString('hex');
    fs.writeFileSync(secretFile(homeDir), secret + '\n', { mode: 0o600 });
    saved = true;
  }
  const forge = createRemoteForge(forgeOptions);
  const webhookUrl = `${publicUrl.replace(/\/+$/, '')}/webhooks/${forgeOptions.kind}`;
  const report = await provision({ forge, settings, templateDir: TEMPLATE_DIR, webhookUrl, secret });
  const out = process.stdout;
  out.write(`${forgeOptions.kind}: repositories of ${forgeOptions.owner}\n`);
  for (const r of report.repos) {
    out.write(`  ${r.role.padEnd(9)} ${r.name.padEnd(14)} ${r.created ? 'created' : 'reused '}  ${r.seeded ? 'seeded from repos-template' : 'content kept'}${r.webhook ? `  webhook ${r.webhook} -> ${webhookUrl}` : ''}\n`);
    out.write(`            ${r.cloneUrl}\n`);
  }
  out.write(
    saved
      ? `webhook secret generated and saved to ${path.resolve(secretFile(homeDir))} (mode 600); \`gitjobs up --home ${homeDir}\` reads it from there.\n`
      : `webhooks use the existing secret (${process.env.GITJOBS_WEBHOOK_SECRET ? 'GITJOBS_WEBHOOK_SECRET' : path.resolve(secretFile(homeDir))}).\n`,
  );
  out.write(`start it with: gitjobs up --forge ${forgeOptions.kind} --owner ${forgeOptions.owner}${forgeOptions.kind === 'gitea' ? ` --forge-url ${forgeOptions.url}` : ''} --public-url ${publicUrl} --home ${homeDir}\n`);
  return 0;
}
