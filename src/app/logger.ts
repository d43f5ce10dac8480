import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { SecretMasker } from './secrets.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Structured logs on stderr, so that stdout stays for what a command prints.
 * With a masker, every line is masked before it is written.
 */
export function createLogger(level: string, masker?: SecretMasker, destination: NodeJS.WritableStream = process.stderr): Logger {
  const options = { level, base: { app: 'gitjobs' }, redact: ['*.password', '*.token', '*.secret', '*.authorization'] };
  if (!masker && destination === process.stderr) return pino(options, pino.destination(2));
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      const text = chunk.toString('utf8');
      destination.write(masker ? masker.mask(text) : text, () => done());
    },
  });
  return pino(options, out);
}
