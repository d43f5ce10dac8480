/**
 * `gitjobs verify RUN`: a run's record checked from clones alone, by what
 * Git holds, without gitjobs' server or its word:
 *
 *  - every task's transitions, read from tracking's commit subjects in
 *    order, form a path its state table allows, from `queued` to the state
 *    its file records;
 *  - result.json lists the tasks tracking has, with their states;
 *  - each output named in result.json is the blob tracking holds for that
 *    task now (a byte changed in a committed log is a different blob);
 *  - the result is what the reducer gives on those outputs;
 *  - the commits result.json and the run name exist in the clones;
 *  - each file result.json lists for a task is in done, in the run's
 *    folder, as that blob, and is the one tracking's record names.
 *
 * Each difference is a line that says what and where.
 */
import { blobId } from './git-ids.js';
import type { RunRecord } from './run.js';
import { canTransition, TASK_STATES, type TaskRecord, type TaskState } from './task.js';
import { completeRun, type RunResult } from './tracking/complete-run.js';
import { filesDir } from './files.js';

export interface VerifyInput {
  runId: string;
  /** The run and its tasks at tracking's head (tasks with the stdout tracking holds for them). */
  run: RunRecord;
  tasks: TaskRecord[];
  /** Tracking's commit subjects, oldest first. */
  subjects: string[];
  /** done's result.json and result.txt for the run. */
  result: RunResult | undefined;
  resultText: string | undefined;
  trackingHasCommit: (sha: string) => Promise<boolean>;
  doneHasCommit: (sha: string) => Promise<boolean>;
  /** The blob id of a file in done at its head, if it is there. */
  doneBlob?: (path: string) => Promise<string | undefined>;
}

const ARROW = /^(\w+) -> (\w+)(?: \(|$)/;

/** The `from -> to` steps of each task of the run, in commit order. */
export function transitionsOf(runId: string, subjects: string[]): Map<string, { from: string; to: string }[]> {
  const out = new Map<string, { from: string; to: string }[]>();
  const prefix = `${runId}/`;
  for (const s of subjects) {
    if (!s.startsWith(prefix)) continue;
    const colon = s.indexOf(': ', prefix.length);
    if (colon < 0) continue;
    const m = ARROW.exec(s.slice(colon + 2));
    if (!m) continue; // not a transition (the kept output of a cancelled attempt)
    const task = s.slice(prefix.length, colon);
    let list = out.get(task);
    if (!list) out.set(task, (list = []));
    list.push({ from: m[1]!, to: m[2]! });
  }
  return out;
}

export async function verifyRun(input: VerifyInput): Promise<string[]> {
  const { runId, run, tasks, result } = input;
  const problems: string[] = [];
  const steps = transitionsOf(runId, input.subjects);
  for (const t of tasks) {
    const own = steps.get(t.id) ?? [];
    // A task with `needs` (or past its run's `parallel`) starts waiting.
    let at = (own[0]?.from ?? t.state) === 'waiting' ? 'waiting' : 'queued';
    for (const { from, to } of own) {
      if (from !== at) problems.push(`${t.id}: a commit records ${from} -> ${to} while the task was ${at}`);
      else if (!TASK_STATES.includes(to as TaskState) || !canTransition(from as TaskState, to as TaskState)) problems.push(`${t.id}: ${from} -> ${to} is not a transition a task can make`);
      at = to;
    }
    if (at !== t.state) problems.push(`${t.id}: its commits end at ${at}, its file says ${t.state}`);
  }
  for (const task of steps.keys()) if (!tasks.some((t) => t.id === task)) problems.push(`${task}: transitions committed for a task the run does not have`);
  if (!result) {
    problems.push(run.doneCommit ? `the done repository has no result.json for ${runId}` : `${runId} has not finished (${run.state}): no result to check`);
    return problems;
  }
  if (result.tasks.map((t) => t.id).join('\n') !== tasks.map((t) => t.id).join('\n')) problems.push(`result.json lists tasks ${result.tasks.map((t) => t.id).join(', ')}; tracking has ${tasks.map((t) => t.id).join(', ')}`);
  const byId = new Map(tasks.map((t) => [t.id, t]));
  for (const r of result.tasks) {
    const t = byId.get(r.id);
    if (!t) continue;
    if (r.state !== t.state) problems.push(`${r.id}: result.json says ${r.state}, tracking says ${t.state}`);
    if (r.output !== undefined && t.stdout !== undefined && r.output !== blobId(t.stdout)) {
      problems.push(`${r.id}: its output in tracking is blob ${blobId(t.stdout).slice(0, 12)}, result.json names ${r.output.slice(0, 12)}`);
    }
    problems.push(...(await fileProblems(input, r, t)));
  }
  if (!(await input.trackingHasCommit(result.commits.tracking))) problems.push(`result.json names tracking commit ${result.commits.tracking}, which the tracking clone does not have`);
  if (run.doneCommit && !(await input.doneHasCommit(run.doneCommit))) problems.push(`tracking names done commit ${run.doneCommit}, which the done clone does not have`);
  // The result again, from tracking's outputs: it must be what done holds.
  if (!/GITJOBS_RESULT_CAP/.test(result.error ?? '') && tasks.every((t) => t.stdout !== undefined || t.state !== 'succeeded')) {
    const { run: _done, ...again } = completeRun({ ...run, state: 'running' }, tasks, result.commits.tracking, result.finishedAt);
    const text = again.resultChanges[1]!.content as string;
    if (input.resultText !== undefined && text !== input.resultText) problems.push(`result.txt is not what reducing tracking's outputs gives (${firstDifference(text, input.resultText)})`);
    if (JSON.stringify(again.result.value) !== JSON.stringify(result.value)) problems.push(`result.json's value is not what reducing tracking's outputs gives`);
  }
  return problems;
}

/** A task's files: result.json, tracking's record and done's tree must name the same blobs. */
async function fileProblems(input: VerifyInput, r: RunResult['tasks'][number], t: TaskRecord): Promise<string[]> {
  const problems: string[] = [];
  const listed = r.files ?? {};
  const recorded = Object.fromEntries((t.files?.entries ?? []).map((e) => [e.path, e.blob]));
  if (JSON.stringify(listed) !== JSON.stringify(t.state === 'succeeded' ? recorded : {})) problems.push(`${r.id}: result.json lists files ${JSON.stringify(listed)}, tracking records ${JSON.stringify(recorded)}`);
  if (!input.doneBlob) return problems;
  for (const [path, blob] of Object.entries(listed)) {
    const where = `${filesDir(input.run, r.id)}/${path}`;
    const found = await input.doneBlob(where);
    if (found !== blob) problems.push(`${r.id}: ${where} in done is ${found ? `blob ${found.slice(0, 12)}` : 'missing'}, result.json names ${blob.slice(0, 12)}`);
  }
  return problems;
}

function firstDifference(want: string, got: string): string {
  let i = 0;
  while (i < want.length && want[i] === got[i]) i++;
  const line = want.slice(0, i).split('\n').length;
  return `first difference on line ${line}: expected ${JSON.stringify(want.split('\n')[line - 1])}, found ${JSON.stringify(got.split('\n')[line - 1])}`;
}
