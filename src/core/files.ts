/**
 * Files in and out of tasks.
 *
 * A task that asks for it (`"out": true`, or a size) writes files under
 * `/out` (`$GITJOBS_OUT`), capped in size; when it succeeds they are
 * committed to the done repository under its run, `<run>/files/<task>/...`,
 * and its record names that commit and each file's blob id. A task with
 * `needs` finds, read-only under `/in` (`$GITJOBS_IN`), each needed task's
 * stdout as `<task>/stdout` and its files under `<task>/files/`.
 *
 * Files travel with the messages: a worker's `finished` report carries what
 * the task wrote, and the TODO message of a task with needs carries its
 * inputs. So a worker needs nothing but the broker, wherever it runs, and
 * both directions are capped.
 */
import { runPaths, type RunLocation } from './layout.js';
import { gitObjectId } from './git-ids.js';

/** The most a task may write under /out, and the default for `"out": true`. */
export const OUT_CAP_MAX = 64 * 1024 * 1024;
/** The most files a task may leave under /out. */
export const OUT_FILES_MAX = 1000;
/** The most a task's inputs (stdout and files of what it needs) may come to: they travel in its TODO message. */
export const INPUTS_CAP = 64 * 1024 * 1024;

/** A file a task wrote, or one it is given: path relative to /out (or /in), and its bytes. */
export interface FileData {
  path: string;
  data: Buffer;
}

/** One file of a task's output, as committed. */
export interface FileEntry {
  path: string;
  /** Git's blob id of its bytes, as the done repository holds it. */
  blob: string;
  bytes: number;
}

/** Where a task's output files are: the done commit that holds them, the folder, and each file. */
export interface TaskFiles {
  commit: string;
  dir: string;
  entries: FileEntry[];
}

/** `<run dir>/files/<task>` in the done repository. */
export function filesDir(run: RunLocation, task: string): string {
  return `${runPaths(run).dir}/files/${task}`;
}

/** A size as people read it: `12 KiB`, `3.5 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${+(n / 1024).toFixed(1)} KiB`;
  return `${+(n / 1024 / 1024).toFixed(2)} MiB`;
}

/** What a task that wrote `total` bytes under `shown` (/out, $GITJOBS_OUT) past its cap is told. */
export function overCap(total: number, capBytes: number, shown = '/out'): string {
  return `the task wrote ${formatBytes(total)} under ${shown}, past its cap of ${formatBytes(capBytes)}`;
}

/**
 * Why a path a task left under /out cannot be committed, or undefined when
 * it can: relative, no `.` or `..` segment, no empty segment, no NUL, no
 * `.git`, at most 255 bytes a segment and 1,024 in all.
 */
export function badPath(path: string): string | undefined {
  if (path.length === 0) return 'an empty path';
  if (Buffer.byteLength(path) > 1024) return 'a path longer than 1024 bytes';
  if (path.includes('\0')) return 'a path with a NUL byte';
  if (path.startsWith('/')) return 'an absolute path';
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') return 'a path with an empty, "." or ".." segment';
    if (segment.toLowerCase() === '.git') return 'a path with a ".git" segment';
    if (Buffer.byteLength(segment) > 255) return 'a name longer than 255 bytes';
  }
  return undefined;
}

/**
 * What is wrong with the files a task left under /out, or undefined: more
 * than its cap in bytes, more than OUT_FILES_MAX files, or a path that
 * cannot be committed. The message names the first offender.
 */
export function checkOutputs(files: readonly FileData[], capBytes: number): string | undefined {
  if (files.length > OUT_FILES_MAX) return `the task left ${files.length} files under /out; at most ${OUT_FILES_MAX} are kept`;
  const total = files.reduce((n, f) => n + f.data.length, 0);
  if (total > capBytes) return overCap(total, capBytes);
  for (const f of files) {
    const why = badPath(f.path);
    if (why) return `/out/${f.path}: ${why}`;
  }
  return undefined;
}

/** The entries of a task's output as committed, sorted by path: each file's blob id as `blobOf` gives it (else computed). */
export function entriesOf(files: readonly FileData[], blobOf: (path: string) => string | undefined = () => undefined): FileEntry[] {
  return files.map((f) => ({ path: f.path, blob: blobOf(f.path) ?? gitObjectId('blob', f.data), bytes: f.data.length })).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A task's inputs, laid out as /in shows them: `<task>/stdout`, `<task>/files/<path>`. */
export function inputTree(needed: readonly { task: string; stdout: string; files: readonly FileData[] }[]): FileData[] {
  const out: FileData[] = [];
  for (const n of needed) {
    out.push({ path: `${n.task}/stdout`, data: Buffer.from(n.stdout, 'utf8') });
    for (const f of n.files) out.push({ path: `${n.task}/files/${f.path}`, data: f.data });
  }
  return out;
}

/** What the result cache keys a task's inputs by: each input's path and blob id. */
export function inputKeys(inputs: readonly FileData[]): string[] {
  return inputs.map((f) => `${f.path}:${gitObjectId('blob', f.data)}`);
}

/** Files as a message carries them (base64), and back. */
export interface WireFile {
  path: string;
  data: string;
}
export const toWire = (files: readonly FileData[]): WireFile[] => files.map((f) => ({ path: f.path, data: f.data.toString('base64') }));
export const fromWire = (files: readonly WireFile[]): FileData[] => files.map((f) => ({ path: f.path, data: Buffer.from(f.data, 'base64') }));
