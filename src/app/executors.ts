import { ProcessExecutor, UNSANDBOXED_WARNING } from '../adapters/process/executor.js';
import type { Logger } from '../core/logger.js';
import type { Executor } from '../core/ports.js';
import type { Settings } from '../core/settings.js';

export type ExecutorKind = 'docker' | 'process';

/**
 * The executor by name: Docker (sandboxed, the default) or plain processes
 * (unsandboxed, and it says so). The Docker client is loaded only when used.
 */
/** `buildLogDir` keeps each worker image's build log (Docker only). */
export async function createExecutor(kind: ExecutorKind, settings: Settings, logger: Logger, buildLogDir?: string): Promise<Executor> {
  if (kind === 'process') {
    logger.warn({}, UNSANDBOXED_WARNING);
    return new ProcessExecutor();
  }
  const { DockerExecutor } = await import('../adapters/docker/executor.js');
  return new DockerExecutor({ baseImage: settings.baseImage, log: logger, ...(buildLogDir ? { buildLogDir } : {}) });
}
