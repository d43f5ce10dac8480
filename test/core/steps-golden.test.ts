/**
 * What tracking receives from this round's steps, byte for byte: releasing
 * and skipping waiting tasks, a schedule recorded, taken and ended.
 */
import { describe, expect, it } from 'vitest';
import { parseProject } from '../../src/core/project.js';
import { queuedRun } from '../../src/core/tracking/queue-run.js';
import { releaseTask, skipTask } from '../../src/core/tracking/task-steps.js';
import { parseSchedule, scheduleEnded, scheduleRecorded, tickTaken } from '../../src/core/tracking/schedule.js';

const TODO = 'a'.repeat(40);
const CONFIG = 'c'.repeat(40);
const now = '2026-01-01T00:00:00.000Z';
const later = '2026-01-01T00:00:05.000Z';

function queued(project: object) {
  return queuedRun({ runId: 'p-1234567', file: 'projects/p.json', project: parseProject('projects/p.json', JSON.stringify(project)), todoCommit: TODO, configCommit: CONFIG, now });
}

describe('waiting tasks', () => {
  it("start waiting when they have needs, or past the run's parallel", () => {
    const q = queued({ parallel: 2, tasks: [{ id: 'a', run: 'true' }, { id: 'b', run: 'true', needs: ['a'] }, { id: 'c', run: 'true' }, { id: 'd', run: 'true' }] });
    expect(q.tasks.map((t) => [t.id, t.state])).toEqual([
      ['a', 'queued'],
      ['b', 'waiting'],
      ['c', 'queued'],
      ['d', 'waiting'],
    ]);
    expect(q.run.parallel).toBe(2);
  });

  it('are released naming what they needed, and the slot when the run has parallel', () => {
    const q = queued({ tasks: [1, 2, 3, 4, 5].map((i) => ({ id: `n${i}`, run: 'true' })).concat([{ id: 'w', run: 'true', needs: ['n1', 'n2', 'n3', 'n4', 'n5'] } as never]) });
    const w = q.tasks.at(-1)!;
    const r = releaseTask(q.run, w, later);
    expect(r.task).toMatchObject({ state: 'queued', queuedAt: later, releasedAt: later });
    expect(r.message).toBe(`p-1234567/w: waiting -> queued (needs met: n1, n2, n3 and 2 more)\n\nTodo-Commit: ${TODO}\nConfig-Commit: ${CONFIG}\n`);
    expect(r.changes).toEqual([{ path: 'runs/9/8/p-1234567/tasks/w.json', content: expect.stringContaining('"releasedAt": "2026-01-01T00:00:05.000Z"') }]);
    const three = releaseTask(q.run, { ...w, needs: ['n1', 'n2', 'n3'] }, later);
    expect(three.message.split('\n')[0]).toBe('p-1234567/w: waiting -> queued (needs met: n1, n2, n3)');
    const slot = releaseTask({ ...q.run, parallel: 4 }, { ...w, needs: ['n1'] }, later);
    expect(slot.message.split('\n')[0]).toBe('p-1234567/w: waiting -> queued (needs met: n1; a slot of parallel 4)');
    const onlySlot = releaseTask({ ...q.run, parallel: 1 }, { ...w, needs: undefined }, later);
    expect(onlySlot.message.split('\n')[0]).toBe('p-1234567/w: waiting -> queued (a slot of parallel 1)');
    expect(() => releaseTask(q.run, q.tasks[0]!, later)).toThrow('p-1234567/n1: queued -> queued is not a transition a task can make');
  });

  it('are skipped saying which need ended and how, and end there', () => {
    const q = queued({ tasks: [{ id: 'a', run: 'true' }, { id: 'w', run: 'true', needs: ['a'] }] });
    const w = q.tasks[1]!;
    const cases = [
      ['failed', 'needs a, which failed'],
      ['skipped', 'needs a, which was skipped'],
      ['cancelled', 'needs a, which was cancelled'],
    ] as const;
    for (const [state, why] of cases) {
      const s = skipTask(q.run, w, { id: 'a', state }, later);
      expect(s.task).toMatchObject({ state: 'skipped', finishedAt: later, error: `skipped: ${why}` });
      expect(s.message).toBe(`p-1234567/w: waiting -> skipped (${why})\n\nTodo-Commit: ${TODO}\nConfig-Commit: ${CONFIG}\n`);
      expect(s.changes).toHaveLength(1);
    }
    expect(() => skipTask(q.run, q.tasks[0]!, { id: 'x', state: 'failed' }, later)).toThrow('p-1234567/a: queued -> skipped is not a transition a task can make');
  });
});

describe('schedules in tracking', () => {
  const record = { file: 'projects/nightly.json', todoCommit: TODO, schedule: '0 3 * * *', since: now };

  it('are recorded with the next run, or saying it never comes', () => {
    const c = scheduleRecorded(record, '2026-01-01T03:00:00.000Z');
    expect(c.changes).toEqual([{ path: 'schedules/nightly.json', content: JSON.stringify(record, null, 2) + '\n' }]);
    expect(c.message).toBe(
      `projects/nightly.json: scheduled "0 3 * * *" (UTC), next run 2026-01-01T03:00:00.000Z\n\nThe file runs at each tick of its schedule, each run recorded like any other, until it is deleted or pushed without "schedule".\n\nTodo-Commit: ${TODO}\n`,
    );
    expect(scheduleRecorded(record, undefined).message.split('\n')[0]).toBe('projects/nightly.json: scheduled "0 3 * * *" (UTC), which never comes');
    expect(parseSchedule(c.changes[0]!.content as string)).toEqual(record);
  });

  it('record the tick taken, and end by deleting their file', () => {
    expect(tickTaken(record, later)).toEqual({ path: 'schedules/nightly.json', content: JSON.stringify({ ...record, lastTick: later }, null, 2) + '\n' });
    const end = scheduleEnded('projects/sub/x.json', 'deleted in aaaaaaa', TODO);
    expect(end).toEqual({ changes: [{ path: 'schedules/sub%2Fx.json', content: null }], message: `projects/sub/x.json: schedule ended (deleted in aaaaaaa)\n\nTodo-Commit: ${TODO}\n` });
  });
});
