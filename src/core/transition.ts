/**
 * Commit messages of the audit log. Subject `<run>/<task>: <from> -> <to> (detail)`,
 * then Git trailers that tie the transition to the todo commit, the config
 * commit, the worker host and the image.
 */
export interface Trailers {
  'Todo-Commit'?: string | undefined;
  'Config-Commit'?: string | undefined;
  'Worker-Host'?: string | undefined;
  Image?: string | undefined;
  'Tracking-Commit'?: string | undefined;
  'Done-Commit'?: string | undefined;
  Attempt?: string | undefined;
  'Rerun-Of'?: string | undefined;
  'Reused-From'?: string | undefined;
  'Cached-From'?: string | undefined;
  'Cache-Key'?: string | undefined;
}

export function commitMessage(subject: string, trailers: Trailers, body?: string): string {
  const lines = Object.entries(trailers)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}: ${String(v).replace(/\s+/g, ' ')}`);
  const parts = [subject.replace(/\n/g, ' ')];
  if (body) parts.push(body.trimEnd());
  if (lines.length) parts.push(lines.join('\n'));
  return parts.join('\n\n') + '\n';
}

export function transitionSubject(run: string, task: string, from: string, to: string, detail?: string): string {
  return `${run}/${task}: ${from} -> ${to}${detail ? ` (${detail})` : ''}`;
}

/** Reads the trailers back from a commit message. */
export function parseTrailers(message: string): Record<string, string> {
  const blocks = message.trimEnd().split(/\n\n/);
  const last = blocks[blocks.length - 1] ?? '';
  const out: Record<string, string> = {};
  for (const line of last.split('\n')) {
    const m = /^([A-Za-z-]+): (.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}
