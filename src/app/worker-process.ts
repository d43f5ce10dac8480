/**
 * `gitjobs up`'s workers, in a small process of their own: starting a task
 * costs a fork, and a fork costs more the larger the process that makes it,
 * so tasks are not started from the process that holds the repositories'
 * caches; nor does spawning ever hold up the event loop that commits. The
 * child has its own RabbitMQ connection (as a member: `up` owns the queues)
 * and leaves as soon as its parent is gone, however the parent went.
 */
import { createLogger } from './logger.js';
import { SecretMasker } from './secrets.js';
import { workerOnly, type WorkerProcessOptions } from './worker-only.js';

export interface WorkerChildStart {
  type: 'start';
  options: Omit<WorkerProcessOptions, 'logger'>;
  logLevel: string;
  /** Masked in every log line, as in the parent. */
  secrets: string[];
}

if (process.send) {
  const send = (m: object) => process.send?.(m);
  // The parent is gone (even by SIGKILL): its channel closes, and the workers go with it.
  process.on('disconnect', () => process.exit(0));
  let stop: ((graceMs?: number) => Promise<void>) | undefined;
  process.on('message', (m: WorkerChildStart | { type: 'stop'; graceMs?: number }) => {
    if (m.type === 'start') {
      const logger = createLogger(m.logLevel, new SecretMasker(m.secrets));
      workerOnly({ ...m.options, logger }).then(
        (running) => {
          stop = running.stop;
          send({ type: 'ready' });
        },
        (err: Error) => send({ type: 'failed', error: err.message }),
      );
    } else if (m.type === 'stop') {
      void (stop ? stop(m.graceMs) : Promise.resolve()).finally(() => {
        send({ type: 'stopped' });
        process.disconnect?.();
      });
    }
  });
  // SIGTERM and SIGINT go to the whole group from a terminal: the parent decides when the workers stop.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
}
