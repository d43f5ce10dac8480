import { pino, type Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Structured logs on stderr, so that stdout stays for what a command prints. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { app: 'gitjobs' }, redact: ['*.password', '*.token', '*.secret'] }, pino.destination(2));
}
