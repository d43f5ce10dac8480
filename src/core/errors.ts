import { formatBytes } from './files.js';
/** Typed errors: each says what went wrong and, where it can, what to do. */

/** A project file that cannot run. `path` is a JSON path such as `$.tasks[1].run`. */
export class ProjectError extends Error {
  override readonly name = 'ProjectError';
  constructor(
    readonly file: string,
    readonly problems: readonly ProjectProblem[],
  ) {
    super(`${file}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
  }
}

export interface ProjectProblem {
  /** JSON path inside the file, `$` for the whole document. */
  path: string;
  message: string;
}

/** A service gitjobs needs (RabbitMQ, Docker, Git) cannot be reached. */
export class ServiceUnavailableError extends Error {
  override readonly name = 'ServiceUnavailableError';
  constructor(
    readonly service: string,
    readonly detail: string,
    readonly hint: string,
  ) {
    super(`${service} is not reachable: ${detail}\n  ${hint}`);
  }
}

/** A message taken from a queue that does not have the expected shape. */
export class MessageError extends Error {
  override readonly name = 'MessageError';
}

/** A transition the task state machine does not allow. */
export class TransitionError extends Error {
  override readonly name = 'TransitionError';
}

/** A commit was asked to build on a head that is no longer the branch's: read again and retry. */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
  constructor(
    readonly repo: string,
    readonly expected: string | undefined,
    readonly actual: string | undefined,
    detail?: string,
  ) {
    super(`${repo}: ${detail ?? `branch moved from ${expected?.slice(0, 7) ?? 'nothing'} to ${actual?.slice(0, 7) ?? 'nothing'} since it was read`}`);
  }
}

/** Thrown by a queue handler to give its message back at once (the worker is shutting down). */
export class RequeueError extends Error {
  override readonly name = 'RequeueError';
}

/**
 * Runs a read-modify-commit step again, from a fresh read, each time another
 * writer got there first; gives up after `attempts`.
 */
export async function retryOnConflict<T>(step: () => Promise<T>, onConflict: (err: ConflictError) => void = () => undefined, attempts = 20): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= attempts) throw err;
      onConflict(err);
    }
  }
}

/** A message larger than the broker takes (GITJOBS_MAX_MESSAGE): refused before it is sent, so that the channel is not closed over it. */
export class MessageTooLargeError extends Error {
  override readonly name = 'MessageTooLargeError';
  constructor(
    readonly queue: string,
    readonly size: number,
    readonly limit: number,
  ) {
    super(`a ${queue} message of ${formatBytes(size)} is more than the broker takes, ${formatBytes(limit)} (GITJOBS_MAX_MESSAGE, which must not exceed RabbitMQ's max_message_size)`);
  }
}

/** A file too large to read whole (a decompression bomb, a runaway output): refused before it is read. */
export class SizeLimitError extends Error {
  override readonly name = 'SizeLimitError';
  constructor(
    readonly what: string,
    readonly size: number,
    readonly limit: number,
  ) {
    super(`${what} is ${size} bytes; at most ${limit} are read`);
  }
}
