/** What the engine says when it cannot start a container, read once for the task and its keeper. */

/** The engine's own words for a failed call (dockerode puts them in `json.message`). */
export function engineReason(err: unknown): string {
  return String((err as { json?: { message?: string } }).json?.message ?? (err as Error).message).trim();
}

/**
 * Whether the engine's start error says that the task's own program could
 * not be run, and the exit code a shell gives for it: 127 when it is not
 * found, 126 when it is not executable. runc says
 * `exec: "nosuch": executable file not found in $PATH` or
 * `exec: "/etc/passwd": permission denied`. Undefined for any other error.
 */
export function programNotRun(reason: string, program: string): 126 | 127 | undefined {
  const at = reason.indexOf(`exec: ${JSON.stringify(program)}:`);
  if (at < 0) return undefined;
  return /permission denied/.test(reason.slice(at)) ? 126 : 127;
}
