/**
 * Retries that say which failures are worth another attempt: on exit codes,
 * on timeouts, with their own backoff; through the collector on in-memory
 * doubles, and the rules alone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runIdFor } from '../../src/core/ids.js';
import { ProjectError } from '../../src/core/errors.js';
import { parseProject } from '../../src/core/project.js';
import { backoffFor, notRetriedBecause, retryable } from '../../src/core/retry.js';
import { isFinal } from '../../src/core/task.js';
import { harness, until, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const finishedRun = (runId: string) => until(h, `${runId} finished`, async () => ((await h.run(runId))?.run.doneCommit ? h.run(runId) : undefined), { advanceMs: 500, steps: 4000 });

describe('a retry policy', () => {
  it('retries the exit codes it names, and fails the others at once, saying why in the commit', async () => {
    h = await harness({ settings: { retryBaseMs: 1000 } });
    const project = { retry: { max: 2, on_exit: [75, 137] }, tasks: [{ id: 'flaky', run: 'exit 75' }, { id: 'broken', run: 'exit 1' }, { id: 'fine', run: 'true' }] };
    const commit = await h.push({ 'projects/p.json': JSON.stringify(project) });
    const id = runIdFor('projects/p.json', commit);
    const view = (await finishedRun(id))!;
    expect(view.run.state).toBe('failed');
    const byId = Object.fromEntries(view.tasks.map((t) => [t.id, t]));
    expect(byId.flaky).toMatchObject({ state: 'failed', attempts: 3, maxAttempts: 3, retryOn: { exit: [75, 137] } });
    expect(byId.broken).toMatchObject({ state: 'failed', attempts: 1, exitCode: 1 });
    expect(byId.fine).toMatchObject({ state: 'succeeded', attempts: 1 });
    const subjects = await h.subjects(id);
    expect(subjects.filter((s) => s.startsWith(`${id}/flaky: failed -> queued`))).toHaveLength(2);
    expect(subjects.filter((s) => s.startsWith(`${id}/broken: failed -> queued`))).toHaveLength(0);
    expect(subjects).toContainEqual(expect.stringMatching(new RegExp(`^${id}/broken: running -> failed \\(exit 1, .*attempt 1/3, exit 1 is not retried \\(on_exit 75, 137\\)\\)$`)));
  });

  it('retries a timeout when on_timeout says so, after the task’s own backoff', async () => {
    h = await harness({ settings: { retryBaseMs: 60_000 } });
    const project = { tasks: [{ id: 'slow', run: 'sleep 5', timeout: '1s', retry: { max: 1, on_timeout: true, backoff: '3s' } }, { id: 'strict', run: 'sleep 5', timeout: '1s', retry: { max: 1, on_exit: [2] } }] };
    const commit = await h.push({ 'projects/t.json': JSON.stringify(project) });
    const id = runIdFor('projects/t.json', commit);
    const retried = await until(h, 'slow queued again', async () => (await h.run(id))?.tasks.find((t) => t.id === 'slow' && t.state === 'queued' && t.attempts === 1), { advanceMs: 100, steps: 200 });
    // Its own backoff (3 s), not the operator's minute.
    expect(Date.parse(retried.notBefore!) - Date.parse(retried.finishedAt!)).toBeGreaterThanOrEqual(3000);
    expect(Date.parse(retried.notBefore!) - Date.parse(retried.finishedAt!)).toBeLessThan(4000);
    const view = (await finishedRun(id))!;
    expect(view.tasks.find((t) => t.id === 'slow')).toMatchObject({ state: 'failed', attempts: 2, timedOut: true });
    expect(view.tasks.find((t) => t.id === 'strict')).toMatchObject({ state: 'failed', attempts: 1, timedOut: true });
    expect(await h.subjects(id)).toContainEqual(expect.stringContaining('strict: running -> failed (timeout after 1.00s, 1.00s, attempt 1/2, a timeout is not retried (on_exit 2))'));
  });
});

describe('the retry rules', () => {
  it('retry what the policy names, always what is not the task’s doing, and everything without a policy', () => {
    const on = { exit: [75], timeout: false };
    expect(retryable({ retryOn: on, exitCode: 75 })).toBe(true);
    expect(retryable({ retryOn: on, exitCode: 1 })).toBe(false);
    expect(retryable({ retryOn: on, exitCode: null, timedOut: true })).toBe(false);
    expect(retryable({ retryOn: { timeout: true }, exitCode: null, timedOut: true })).toBe(true);
    expect(retryable({ retryOn: { timeout: true }, exitCode: 3 })).toBe(false);
    // No exit code and no timeout: the image, the executor or the worker failed.
    expect(retryable({ retryOn: on, exitCode: null })).toBe(true);
    expect(retryable({ exitCode: 1 })).toBe(true);
    expect(notRetriedBecause({ retryOn: on, exitCode: 1 })).toBe('exit 1 is not retried (on_exit 75)');
    expect(notRetriedBecause({ retryOn: { exit: [2] }, exitCode: null, timedOut: true })).toBe('a timeout is not retried (on_exit 2)');
    expect(notRetriedBecause({ retryOn: { timeout: false }, exitCode: null, timedOut: true })).toBe('a timeout is not retried (on_timeout false)');
    expect(notRetriedBecause({ retryOn: on, exitCode: 75 })).toBeUndefined();
    expect(isFinal({ state: 'failed', attempts: 1, maxAttempts: 3, retryOn: on, exitCode: 1 })).toBe(true);
    expect(isFinal({ state: 'failed', attempts: 1, maxAttempts: 3, retryOn: on, exitCode: 75 })).toBe(false);
  });

  it('back off from the task’s own wait, doubling, or the operator’s', () => {
    const operator = (n: number) => n * 7;
    expect([1, 2, 3].map((n) => backoffFor({ backoffMs: 500 }, n, operator))).toEqual([500, 1000, 2000]);
    expect(backoffFor({ backoffMs: 3_000_000 }, 4, operator)).toBe(3_600_000);
    expect(backoffFor({}, 3, operator)).toBe(21);
  });

  it('are read from the project, and refused with the rule they break', () => {
    const p = parseProject('projects/r.json', JSON.stringify({ retry: { max: 2, on_exit: [137, 75, 75], backoff: '2s' }, tasks: [{ id: 'a', run: 'x' }, { id: 'b', run: 'x', retry: { max: 0 } }] }));
    expect(p.retries).toBe(2);
    expect(p.tasks[0]!.retry).toEqual({ max: 2, on: { exit: [75, 137] }, backoffMs: 2000 });
    expect(p.tasks[1]!.retry).toEqual({ max: 0 });
    const problems = (doc: object) => {
      try {
        parseProject('projects/r.json', JSON.stringify(doc));
      } catch (err) {
        return (err as ProjectError).problems;
      }
      return [];
    };
    expect(problems({ retries: 1, retry: { max: 1 }, tasks: [{ id: 'a', run: 'x' }] })).toEqual([{ path: '$.retry', message: 'give "retries" (a number) or "retry" (a policy), not both' }]);
    expect(problems({ retry: { max: 1, on_exit: [0] }, tasks: [{ id: 'a', run: 'x' }] })).toEqual([{ path: '$.retry.on_exit[0]', message: 'an exit code to retry on is 1 to 255 (0 is success)' }]);
    expect(problems({ tasks: [{ id: 'a', run: 'x', retry: { max: 11 } }] })).toEqual([{ path: '$.tasks[0].retry.max', message: 'at most 10 retries' }]);
    expect(problems({ tasks: [{ id: 'a', run: 'x', retry: { max: 1, backoff: 'soon' } }] })[0]!.path).toBe('$.tasks[0].retry.backoff');
    expect(problems({ tasks: [{ id: 'a', run: 'x', retry: { max: 1, on_signal: 9 } }] })).toEqual([{ path: '$.tasks[0].retry', message: 'unknown field "on_signal"' }]);
  });
});
