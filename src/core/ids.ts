import { createHash } from 'node:crypto';
import { posix } from 'node:path';

/** Task and run ids: safe as file names and in commit subjects. */
export const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export function isValidId(id: string): boolean {
  return typeof id === 'string' && ID_PATTERN.test(id) && id !== '.' && id !== '..' && !id.includes('..');
}

/**
 * The run id for a project file at a todo commit: stable for a (file, commit)
 * pair, so the same push delivered twice maps to the same run.
 * `projects/q12.json` at commit c gives `q12-<7 hex of sha1(path, c)>`.
 */
export function runIdFor(file: string, commit: string): string {
  const base = posix.basename(file).replace(/\.json$/i, '');
  const slug = base.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '').slice(0, 48) || 'project';
  const hash = createHash('sha1').update(`${file}\0${commit}`).digest('hex').slice(0, 7);
  return `${slug}-${hash}`;
}

/**
 * The run of a scheduled project file at one tick: `nightly-1a2b3c4.t20261128T030000Z`,
 * stable for (file, commit, tick), so that a tick never runs twice.
 */
export function scheduledRunId(file: string, commit: string, tickIso: string): string {
  const [slug, hash] = [runIdFor(file, commit).slice(0, -8).slice(0, 32), runIdFor(file, commit).slice(-7)];
  return `${slug}-${hash}.t${tickIso.replace(/[-:]/g, '').replace(/\.\d{3}/, '')}`;
}

/** `q12-1a2b3c4.r2` is the second re-run of `q12-1a2b3c4`; a re-run of a re-run counts from the same first run. */
const RERUN = /\.r(\d+)$/;

export function firstRunOf(runId: string): string {
  return runId.replace(RERUN, '');
}

/** The id of the next re-run of `runId`, given the ids tracking already has. */
export function nextRerunId(runId: string, existing: Iterable<string>): string {
  const first = firstRunOf(runId);
  let n = 0;
  for (const id of existing) {
    const m = RERUN.exec(id);
    if (m && id.slice(0, m.index) === first) n = Math.max(n, Number(m[1]));
  }
  return `${first}.r${n + 1}`;
}

export function shortSha(sha: string): string {
  return sha.slice(0, 7);
}
