/**
 * Where things live in the tracking and done repositories.
 *
 * Layout 2 (every run recorded now) keeps each commit small whatever the
 * size of the run and the number of runs, by fanning folders out on the
 * SHA-1 of ids (as git fans out its own objects), so that no folder a
 * transition rewrites holds more than a few dozen entries:
 *
 *   runs/<r1>/<r2>/<run>/run.json            the run: state, commits, counts (no task list)
 *   runs/<r1>/<r2>/<run>/tasks.jsonl         one line per task, in result order, written once when queued
 *   runs/<r1>/<r2>/<run>/tasks/<t..>/<task>.json    the task's state, rewritten by each of its transitions
 *   runs/<r1>/<r2>/<run>/tasks/<t..>/<task>.log     its output
 *   runs/<r1>/<r2>/<run>/tasks/<t..>/<task>.stdout  its stdout, when it differs from the output
 *   (done) runs/<r1>/<r2>/<run>/result.json, result.txt
 *
 * r1, r2 are the first two hex digits of SHA-1(run id); t.. as many of
 * SHA-1(task id) as the run's size needs (none up to 32 tasks, one up to
 * 512, two up to 8,192, three beyond). `git log -- <task>.*` tells one
 * task's story.
 *
 * Layout 1 (runs recorded before) stays readable: `projects/<run>/run.json`
 * (with its task list), `tasks/<task>.json`, `logs/<task>.log`,
 * `stdout/<task>.txt`, and `projects/<run>/result.*` in done.
 */
import { createHash } from 'node:crypto';

/** The files of one run, in tracking (run, tasks, logs) and in done (result). */
export interface RunPaths {
  layout: 1 | 2;
  dir: string;
  runFile: string;
  /** Layout 2: the task list with each task's command, written once. */
  taskList?: string;
  /** Layout 2: written once every first-attempt TODO message of the run is confirmed by the broker. */
  publishedFile?: string;
  /** The folder holding the task files (each under its fan-out folders in layout 2). */
  tasksDir: string;
  taskFile(task: string): string;
  logFile(task: string): string;
  stdoutFile(task: string): string;
  resultJson: string;
  resultText: string;
}

/** What locates a run's files: its id, and for layout 2 how far its tasks fan out. */
export interface RunLocation {
  id: string;
  layout?: 1 | 2;
  taskFanout?: number;
}

const hex = (id: string) => createHash('sha1').update(id).digest('hex');

/** Fan-out levels (16 folders each) for a run of `tasks` tasks: at most 32 tasks in a folder. */
export function taskFanoutFor(tasks: number): number {
  return tasks <= 32 ? 0 : tasks <= 512 ? 1 : tasks <= 8192 ? 2 : 3;
}

/** `runs/<r1>/<r2>/<run>`: where a layout-2 run lives, from its id alone. */
export function runDirOf(runId: string): string {
  const h = hex(runId);
  return `runs/${h[0]}/${h[1]}/${runId}`;
}

export function runPaths(run: RunLocation): RunPaths {
  if (run.layout !== 2) {
    const dir = `projects/${run.id}`;
    return {
      layout: 1,
      dir,
      runFile: `${dir}/run.json`,
      tasksDir: `${dir}/tasks`,
      taskFile: (task) => `${dir}/tasks/${task}.json`,
      logFile: (task) => `${dir}/logs/${task}.log`,
      stdoutFile: (task) => `${dir}/stdout/${task}.txt`,
      resultJson: `${dir}/result.json`,
      resultText: `${dir}/result.txt`,
    };
  }
  const dir = runDirOf(run.id);
  const levels = run.taskFanout ?? 0;
  const base = (task: string) => {
    const h = hex(task);
    let folder = `${dir}/tasks/`;
    for (let i = 0; i < levels; i++) folder += `${h[i]}/`;
    return folder + task;
  };
  return {
    layout: 2,
    dir,
    runFile: `${dir}/run.json`,
    taskList: `${dir}/tasks.jsonl`,
    publishedFile: `${dir}/published.json`,
    tasksDir: `${dir}/tasks`,
    taskFile: (task) => `${base(task)}.json`,
    logFile: (task) => `${base(task)}.log`,
    stdoutFile: (task) => `${base(task)}.stdout`,
    resultJson: `${dir}/result.json`,
    resultText: `${dir}/result.txt`,
  };
}

/** The folder of layout-1 runs, and of layout-2 runs, in tracking and done. */
export const LEGACY_RUNS_DIR = 'projects';
export const RUNS_DIR = 'runs';

/** Where a run's file may be, in the order to look: layout 2, then layout 1. */
export function candidateRunFiles(runId: string): { layout: 1 | 2; runFile: string }[] {
  return [
    { layout: 2, runFile: runPaths({ id: runId, layout: 2 }).runFile },
    { layout: 1, runFile: runPaths({ id: runId, layout: 1 }).runFile },
  ];
}

/** Project files in the todo repository: `projects/**.json`. */
/** Tracking's record of a project file that runs on a schedule: one flat file per project file. */
export const SCHEDULES_DIR = 'schedules';

export function scheduleFileOf(projectFile: string): string {
  return `${SCHEDULES_DIR}/${encodeURIComponent(projectFile.replace(/^projects\//, ''))}`;
}

export function isProjectFile(path: string): boolean {
  return /^projects\/.+\.json$/i.test(path);
}

/** A project's name from its file: `projects/q12.json` -> `q12`. */
export function projectNameOf(file: string): string {
  return file.replace(/^.*\//, '').replace(/\.json$/i, '');
}
