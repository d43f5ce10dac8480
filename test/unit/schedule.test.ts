/**
 * Schedules on in-memory doubles, on a clock that moves when told: a file
 * with "schedule" is recorded, not run, when pushed; it runs at each tick,
 * each run naming its tick; a scheduler that was down runs the last missed
 * tick once; deleting the file, or pushing it without a schedule, ends it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { settle } from '../../src/adapters/memory/clock.js';
import { runIdFor } from '../../src/core/ids.js';
import { listRunIds, readRunRecord, repoTree } from '../../src/core/run-reader.js';
import { Scheduler } from '../../src/dispatcher/scheduler.js';
import { harness, type Harness } from './harness.js';

let h: Harness;
let scheduler: Scheduler | undefined;
afterEach(async () => {
  await scheduler?.stop();
  await h?.stop();
});

const newScheduler = () => new Scheduler({ store: h.store, tracking: 'tache_suivi', clock: h.clock, log: h.log, run: (s, tick) => h.dispatcher.runScheduled(s, tick) });

/** The scheduled runs of a file, oldest tick first, with their states. */
async function scheduledRuns(name: string): Promise<{ id: string; tick: string; state: string }[]> {
  const head = (await h.store.head('tache_suivi'))!;
  const source = repoTree(h.store, 'tache_suivi');
  const out = [];
  for (const id of await listRunIds(source, head)) {
    const run = await readRunRecord(source, head, id);
    if (run?.scheduledFor && run.project === name) out.push({ id, tick: run.scheduledFor, state: run.state });
  }
  return out.sort((a, b) => a.tick.localeCompare(b.tick));
}

async function advance(ms: number, step = 1000): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    await h.clock.advance(step);
    await settle(10);
  }
}

describe('schedules', () => {
  it('a pushed schedule runs at each tick, each run naming it; a scheduler that was down runs the last missed tick once', async () => {
    h = await harness();
    const project = { schedule: '*/10 * * * * *', tasks: [{ id: 't', run: 'echo tick' }] };
    const todoCommit = await h.push({ 'projects/nightly.json': JSON.stringify(project) });
    // Recorded, not run.
    expect(await scheduledRuns('nightly')).toEqual([]);
    const subjects = await h.store.subjects('tache_suivi');
    expect(subjects.at(-1)).toBe('projects/nightly.json: scheduled "*/10 * * * * *" (UTC), next run 2026-01-01T00:00:10.000Z');
    scheduler = newScheduler();
    await scheduler.start();
    await advance(25_000);
    const runs = await scheduledRuns('nightly');
    expect(runs.map((r) => r.tick)).toEqual(['2026-01-01T00:00:10.000Z', '2026-01-01T00:00:20.000Z']);
    expect(runs[0]!.id).toMatch(/^nightly-[0-9a-f]{7}\.t20260101T000010Z$/);
    expect((await h.store.subjects('tache_suivi')).some((s) => s.startsWith(`${runs[0]!.id}: queued (1 task from projects/nightly.json, scheduled for 2026-01-01T00:00:10.000Z)`))).toBe(true);
    expect((await h.run(runs[0]!.id))!.run.todoCommit).toBe(todoCommit);

    // Down for a minute: six ticks missed, one run when it is back.
    await scheduler.stop();
    await advance(60_000);
    scheduler = newScheduler();
    await scheduler.start();
    await settle(20);
    expect((await scheduledRuns('nightly')).map((r) => r.tick)).toEqual(['2026-01-01T00:00:10.000Z', '2026-01-01T00:00:20.000Z', '2026-01-01T00:01:20.000Z']);
    await advance(10_000);
    expect(await scheduledRuns('nightly')).toHaveLength(4);
    for (const r of await scheduledRuns('nightly')) expect((await h.run(r.id))!.run.state).toBe('succeeded');

    // Deleted: the schedule ends, and no tick runs after.
    await h.push({ 'projects/nightly.json': null });
    expect((await h.store.subjects('tache_suivi')).at(-1)).toMatch(/^projects\/nightly\.json: schedule ended \(deleted in [0-9a-f]{7}\)$/);
    await advance(30_000);
    expect(await scheduledRuns('nightly')).toHaveLength(4);
  });

  it('a file pushed again without a schedule runs at once and its schedule ends; a bad schedule is refused, saying why', async () => {
    h = await harness();
    await h.push({ 'projects/p.json': JSON.stringify({ schedule: '0 3 * * *', tasks: [{ id: 't', run: 'true' }] }) });
    scheduler = newScheduler();
    await scheduler.start();
    await h.push({ 'projects/p.json': JSON.stringify({ tasks: [{ id: 't', run: 'true' }] }) });
    await settle(20);
    const head = (await h.store.head('tache_suivi'))!;
    expect(await h.store.listDir('tache_suivi', head, 'schedules')).toEqual([]);
    const queued = (await h.store.subjects('tache_suivi')).find((s) => s.includes(': queued (1 task from projects/p.json)'));
    expect(queued).toBeDefined();
    expect(queued!.includes('scheduled for')).toBe(false);
    let body = '';
    for await (const c of h.store.history('tache_suivi', head)) if (c.message.startsWith(queued!)) body = c.message;
    expect(body.split('\n\n')[1]).toBe('Its schedule ended: projects/p.json was pushed without "schedule".');

    const bad = await h.push({ 'projects/bad.json': JSON.stringify({ schedule: '0 25 * * *', tasks: [{ id: 't', run: 'true' }] }) });
    const run = (await h.run(runIdFor('projects/bad.json', bad)))!.run;
    expect(run.state).toBe('rejected');
    expect(run.error).toBe('projects/bad.json: $.schedule: not a cron schedule: hour: "25" is not 0-23');
  });
});
