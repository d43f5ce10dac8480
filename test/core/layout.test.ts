/**
 * Where a run's files live: pinned path by path, since every reader (API,
 * dashboard, status, recovery) and every clone of tracking depends on them.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { candidateRunFiles, isProjectFile, LEGACY_RUNS_DIR, projectNameOf, runDirOf, runPaths, RUNS_DIR, taskFanoutFor } from '../../src/core/layout.js';

const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');

describe('layout 2', () => {
  it('fans runs out on two hex digits of the run id’s SHA-1', () => {
    const h = sha1('q12-1a2b3c4');
    expect(runDirOf('q12-1a2b3c4')).toBe(`runs/${h[0]}/${h[1]}/q12-1a2b3c4`);
    expect(RUNS_DIR).toBe('runs');
  });
  it('fans tasks out as the run’s size needs: none up to 32, then one level per 16 times more', () => {
    expect([0, 1, 32, 33, 512, 513, 8192, 8193, 100_000].map(taskFanoutFor)).toEqual([0, 0, 0, 1, 1, 2, 2, 3, 3]);
  });
  it('names every file of a run and of its tasks', () => {
    const dir = runDirOf('r-1234567');
    const t = sha1('task.7');
    const flat = runPaths({ id: 'r-1234567', layout: 2 });
    expect(flat).toMatchObject({
      layout: 2,
      dir,
      runFile: `${dir}/run.json`,
      taskList: `${dir}/tasks.jsonl`,
      publishedFile: `${dir}/published.json`,
      tasksDir: `${dir}/tasks`,
      resultJson: `${dir}/result.json`,
      resultText: `${dir}/result.txt`,
    });
    expect(flat.taskFile('task.7')).toBe(`${dir}/tasks/task.7.json`);
    expect(flat.logFile('task.7')).toBe(`${dir}/tasks/task.7.log`);
    expect(flat.stdoutFile('task.7')).toBe(`${dir}/tasks/task.7.stdout`);
    const deep = runPaths({ id: 'r-1234567', layout: 2, taskFanout: 3 });
    expect(deep.taskFile('task.7')).toBe(`${dir}/tasks/${t[0]}/${t[1]}/${t[2]}/task.7.json`);
    expect(deep.logFile('task.7')).toBe(`${dir}/tasks/${t[0]}/${t[1]}/${t[2]}/task.7.log`);
    expect(runPaths({ id: 'r-1234567', layout: 2, taskFanout: 1 }).stdoutFile('task.7')).toBe(`${dir}/tasks/${t[0]}/task.7.stdout`);
  });
});

describe('layout 1 (runs recorded before layout 2)', () => {
  it('stays where it was', () => {
    const p = runPaths({ id: 'old-1234567' });
    expect(p).toMatchObject({
      layout: 1,
      dir: 'projects/old-1234567',
      runFile: 'projects/old-1234567/run.json',
      tasksDir: 'projects/old-1234567/tasks',
      resultJson: 'projects/old-1234567/result.json',
      resultText: 'projects/old-1234567/result.txt',
    });
    expect(p.taskList).toBeUndefined();
    expect(p.publishedFile).toBeUndefined();
    expect(p.taskFile('a')).toBe('projects/old-1234567/tasks/a.json');
    expect(p.logFile('a')).toBe('projects/old-1234567/logs/a.log');
    expect(p.stdoutFile('a')).toBe('projects/old-1234567/stdout/a.txt');
    expect(runPaths({ id: 'old-1234567', layout: 1, taskFanout: 2 }).taskFile('a')).toBe('projects/old-1234567/tasks/a.json');
    expect(LEGACY_RUNS_DIR).toBe('projects');
  });
  it('is looked for after layout 2', () => {
    expect(candidateRunFiles('x-1234567')).toEqual([
      { layout: 2, runFile: `${runDirOf('x-1234567')}/run.json` },
      { layout: 1, runFile: 'projects/x-1234567/run.json' },
    ]);
  });
});

describe('project files', () => {
  it('are the JSON files under projects/, at any depth', () => {
    expect(isProjectFile('projects/a.json')).toBe(true);
    expect(isProjectFile('projects/sub/a.JSON')).toBe(true);
    expect(isProjectFile('projects/.json')).toBe(false);
    expect(isProjectFile('projects/a.json.txt')).toBe(false);
    expect(isProjectFile('other/projects/a.json')).toBe(false);
    expect(isProjectFile('projects.json')).toBe(false);
    expect(isProjectFile('README.md')).toBe(false);
  });
  it('name their project by their file name', () => {
    expect(projectNameOf('projects/q12.json')).toBe('q12');
    expect(projectNameOf('projects/sub/q12.JSON')).toBe('q12');
    expect(projectNameOf('q12.json')).toBe('q12');
    expect(projectNameOf('projects/a.json.json')).toBe('a.json');
  });
});
