/**
 * A push to the config repository builds its worker images at once, so that
 * the next run does not wait for them. A worker that does not build is
 * reported; runs that use it fail with the build's error until config is fixed.
 */
import type { Logger } from '../core/logger.js';
import type { Executor, GitStore } from '../core/ports.js';
import type { WorkerSources } from './attempt.js';

export interface PrebuildOptions {
  executor: Executor;
  sources: WorkerSources;
  store: Pick<GitStore, 'listDir'>;
  configRepo: string;
  /** Where workers fetch the config repository. */
  configUrl: string;
  log: Logger;
}

export async function prebuildImages(options: PrebuildOptions, commit: string): Promise<void> {
  const { executor, sources, store, configRepo, configUrl, log } = options;
  for (const name of await store.listDir(configRepo, commit, 'workers')) {
    try {
      const image = await executor.prepare(await sources.worker(configUrl, commit, name));
      log.info({ worker: name, commit, image }, 'worker image built for the new config commit');
    } catch (err) {
      log.warn({ worker: name, commit, err: (err as Error).message }, 'worker image did not build; runs using it will fail until config is fixed');
    }
  }
}
