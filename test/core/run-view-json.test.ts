/**
 * GET /api/runs/RUN's answer, written a batch of records at a time: the
 * same JSON as the whole view put together and stringified at once, in
 * both layouts, across batch boundaries, with missing task files skipped.
 */
import { describe, expect, it } from 'vitest';
import { runPaths } from '../../src/core/layout.js';
import { openRunView, readRunView, RECORD_BATCH, type TreeSource } from '../../src/core/run-reader.js';
import { TASK_STATES } from '../../src/core/task.js';
import { runViewJson } from '../../src/server/api.js';

function tree(files: Map<string, string>): TreeSource {
  return {
    async readFile(_commit, path) {
      return files.get(path);
    },
    async listDir() {
      return [];
    },
  };
}

/** What the endpoint answered when it built the whole view first. */
async function wholeAnswer(src: TreeSource, runId: string, commits?: unknown[]) {
  const view = (await readRunView(src, 'c1', runId))!;
  const progress = { ...view.progress, running: view.tasks.filter((t) => t.state === 'running').length };
  return JSON.parse(JSON.stringify({ repo: 'tache_suivi', tracking: 'c1', ...view, progress, tasks: view.tasks.map(({ stdout, ...t }) => t), ...(commits ? { commits } : {}) })) as unknown;
}

async function streamed(src: TreeSource, runId: string, commits?: unknown[]): Promise<string> {
  const opened = (await openRunView(src, 'c1', runId))!;
  return [...runViewJson('tache_suivi', 'c1', opened, commits)].join('');
}

const count = RECORD_BATCH * 2 + 7;
const stateOf = (i: number) => TASK_STATES[i % TASK_STATES.length]!;

describe('the run view answer, a batch at a time', () => {
  it('is the whole view as one JSON (layout 2): key order, progress with running, records without stdout, the task files missing skipped', async () => {
    const id = 'big-1234567';
    const paths = runPaths({ id, layout: 2, taskFanout: 1 });
    const files = new Map<string, string>();
    files.set(paths.runFile, JSON.stringify({ id, project: 'big', file: 'projects/big.json', state: 'running', todoCommit: 't', createdAt: 'x', taskFanout: 1 }));
    files.set(paths.taskList!, Array.from({ length: count }, (_, i) => JSON.stringify({ id: `t${i}`, argv: ['echo', String(i)], timeoutMs: 1000, maxAttempts: 2 })).join('\n') + '\n');
    files.set(paths.publishedFile!, JSON.stringify({ at: '2026-01-01T00:00:00.000Z' }));
    // Every task but those at a batch's edges and one in the middle has its file.
    const missing = new Set([0, RECORD_BATCH - 1, RECORD_BATCH, 1500, count - 1]);
    for (let i = 0; i < count; i++) if (!missing.has(i)) files.set(paths.taskFile(`t${i}`), JSON.stringify({ id: `t${i}`, state: stateOf(i), attempts: 1, stdout: `out ${i}\n` }));
    const src = tree(files);
    const text = await streamed(src, id, [{ commit: 'abc', subject: `${id}: queued` }]);
    const answer = JSON.parse(text) as { tasks: { id: string; stdout?: string }[]; progress: object };
    expect(answer).toEqual(await wholeAnswer(src, id, [{ commit: 'abc', subject: `${id}: queued` }]));
    expect(Object.keys(answer)).toEqual(['repo', 'tracking', 'run', 'tasks', 'progress', 'commits']);
    expect(answer.tasks).toHaveLength(count - missing.size);
    expect(answer.tasks.some((t) => 'stdout' in t)).toBe(false);
    expect(Object.keys(answer.progress)).toEqual(['done', 'failed', 'total', 'running']);
    expect(answer.progress).toMatchObject({ total: count - missing.size, running: [...Array(count).keys()].filter((i) => !missing.has(i) && stateOf(i) === 'running').length });
  });

  it('is the whole view as one JSON (layout 1), without commits when not asked; a run with no task file gives an empty list', async () => {
    const id = 'old-1234567';
    const ids = Array.from({ length: RECORD_BATCH + 3 }, (_, i) => `t${i}`);
    const files = new Map<string, string>();
    files.set(`projects/${id}/run.json`, JSON.stringify({ id, project: 'old', file: 'projects/old.json', state: 'succeeded', todoCommit: 't', tasks: ids, createdAt: 'x' }));
    ids.forEach((t, i) => files.set(`projects/${id}/tasks/${t}.json`, JSON.stringify({ run: id, id: t, state: stateOf(i), attempts: 1, maxAttempts: 1 })));
    expect(JSON.parse(await streamed(tree(files), id))).toEqual(await wholeAnswer(tree(files), id));
    const empty = new Map([[`projects/${id}/run.json`, files.get(`projects/${id}/run.json`)!]]);
    const none = JSON.parse(await streamed(tree(empty), id)) as { tasks: unknown[]; progress: object };
    expect(none).toEqual(await wholeAnswer(tree(empty), id));
    expect(none.tasks).toEqual([]);
    expect(none.progress).toEqual({ done: 0, failed: 0, total: 0, running: 0 });
  });
});
