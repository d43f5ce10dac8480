/**
 * The operator reads gitjobs through its log. One busy afternoon on the
 * in-memory doubles — ignored pushes, a duplicate, a config change, a
 * rejected file, a push with too many files, a retried and dead-lettered
 * task, a worker image that does not build, a deleted project file, a
 * re-run — and every line the dispatcher, workers and collector wrote, with
 * its level and fields, is pinned (ids and commits replaced by names).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ZERO_SHA } from '../../src/core/events.js';
import { runIdFor } from '../../src/core/ids.js';
import { harness, until, type Harness, type LogLine } from './harness.js';

let h: Harness;
afterEach(async () => h?.stop());

const project = (runs: Record<string, string>, extra: object = {}) => JSON.stringify({ ...extra, tasks: Object.entries(runs).map(([id, run]) => ({ id, run })) });
const finished = (runId: string) => until(h, `${runId} finished`, async () => ((await h.run(runId))?.run.doneCommit ? true : undefined), { advanceMs: 100, steps: 3000 });

/** Log lines as text: level, message, then the fields that say what happened, with ids named. */
function readable(lines: LogLine[], names: Map<string, string>): string[] {
  const name = (v: unknown): unknown => {
    if (typeof v === 'string') {
      let out = v;
      for (const [raw, n] of names) out = out.split(raw).join(n);
      return out.replace(/\b[0-9a-f]{40}\b/g, '<sha>');
    }
    return v;
  };
  const out = new Set<string>();
  for (const l of lines) {
    const { level, msg, ...fields } = l;
    for (const k of ['durationMs', 'at', 'host', 'worker', 'pid']) delete fields[k];
    const shown = Object.entries(fields)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${JSON.stringify(name(v))}`)
      .join(' ');
    out.add(`${level} ${name(msg)}${shown ? ` | ${shown}` : ''}`);
  }
  return [...out].sort();
}

describe('the operator’s log', () => {
  it('names what happened, at the right level, with the fields that matter', async () => {
    h = await harness({ broken: ['broken'], settings: { retryBaseMs: 1000, pushFiles: 4 } });
    const names = new Map<string, string>();
    const main = 'refs/heads/main';
    // Pushes that do not concern gitjobs.
    await h.dispatcher.handlePush({ repo: 'tache_a_faire', ref: 'refs/heads/dev', before: ZERO_SHA, after: 'f'.repeat(40), source: 'test' });
    await h.dispatcher.handlePush({ repo: 'elsewhere', ref: main, before: ZERO_SHA, after: 'f'.repeat(40), source: 'test' });
    // A config change.
    const config = await h.store.commit('config', { changes: [{ path: 'workers/broken/Dockerfile', content: 'FROM nothing\n' }], message: 'Add a broken worker\n' });
    await h.dispatcher.handlePush({ repo: 'config', ref: main, before: ZERO_SHA, after: config, source: 'test' });
    // A valid project, a failing one with a retry, a broken worker's, and an invalid file, in one push; then the same push again.
    const first = await h.push({
      'projects/ok.json': project({ a: 'echo a' }),
      'projects/flaky.json': project({ x: 'exit 4' }, { retries: 1 }),
      'projects/image.json': project({ i: 'true' }, { worker: 'broken' }),
      'projects/bad.json': '{"tasks": 3}',
    });
    for (const f of ['ok', 'flaky', 'image', 'bad']) names.set(runIdFor(`projects/${f}.json`, first), `<${f}>`);
    await h.dispatcher.handlePush({ repo: 'tache_a_faire', ref: main, before: ZERO_SHA, after: first, source: 'again' });
    await h.dispatcher.handlePush({ repo: 'tache_a_faire', ref: main, before: ZERO_SHA, after: first, source: 'again' });
    for (const f of ['ok', 'flaky', 'image']) await finished(runIdFor(`projects/${f}.json`, first));
    // Too many files in one push.
    await h.push({ 'projects/m1.json': project({ a: 'true' }), 'projects/m2.json': project({ a: 'true' }), 'projects/m3.json': project({ a: 'true' }), 'projects/m4.json': project({ a: 'true' }), 'projects/m5.json': project({ a: 'true' }) });
    // A long task whose project file is deleted.
    const slow = await h.push({ 'projects/slow.json': project({ s: 'sleep 1000' }) });
    const slowId = runIdFor('projects/slow.json', slow);
    names.set(slowId, '<slow>');
    await until(h, 'slow running', async () => (await h.run(slowId))?.tasks[0]!.state === 'running', { advanceMs: 100, steps: 200 });
    await h.push({ 'projects/slow.json': null });
    await finished(slowId);
    // A re-run.
    const okId = runIdFor('projects/ok.json', first);
    expect(await h.dispatcher.rerun(okId)).toMatchObject({ outcome: 'queued', run: `${okId}.r1` });
    await finished(`${okId}.r1`);
    await h.idle();
    for (const w of h.workers) names.set(w.id, '<worker>');
    expect(readable(h.log.lines, names)).toMatchInlineSnapshot(`
      [
        "debug task started | argv=["sh","-c","echo a"] attempt=1 leased=false run="<ok>" task="a"",
        "debug task started | argv=["sh","-c","echo a"] attempt=1 leased=false run="<ok>.r1" task="a"",
        "debug task started | argv=["sh","-c","exit 4"] attempt=1 leased=false run="<flaky>" task="x"",
        "debug task started | argv=["sh","-c","exit 4"] attempt=2 leased=false run="<flaky>" task="x"",
        "debug task started | argv=["sh","-c","sleep 1000"] attempt=1 leased=false run="<slow>" task="s"",
        "error could not prepare the worker image | attempt=1 err="building workers/broken at config c8161cf failed: RUN exited 1" run="<image>" task="i"",
        "info config repository moved; worker images build for it | after="<sha>"",
        "info project file deleted; cancelling its run | file="projects/slow.json" run="<slow>"",
        "info push already dispatched; ignored | after="<sha>" before="<sha>" repo="tache_a_faire" source="again"",
        "info push ignored: push to refs/heads/dev ignored: only main is watched | ref="refs/heads/dev" repo="tache_a_faire"",
        "info push ignored: repository elsewhere is not one of gitjobs' repositories (tache_a_faire, config) | ref="refs/heads/main" repo="elsewhere"",
        "info re-running | rerunOf="<ok>" run="<ok>.r1"",
        "info run cancelled | reason="projects/slow.json deleted in 31dea96" run="<slow>" tasks=1",
        "info run finished | attempt=1 doneCommit="<sha>" run="<image>" state="failed" task="i"",
        "info run finished | attempt=1 doneCommit="<sha>" run="<ok>" state="succeeded" task="a"",
        "info run finished | attempt=1 doneCommit="<sha>" run="<ok>.r1" state="succeeded" task="a"",
        "info run finished | attempt=2 doneCommit="<sha>" run="<flaky>" state="failed" task="x"",
        "info run finished | doneCommit="<sha>" run="<slow>" state="cancelled"",
        "info run queued | file="projects/flaky.json" run="<flaky>" tasks=1",
        "info run queued | file="projects/image.json" run="<image>" tasks=1",
        "info run queued | file="projects/ok.json" run="<ok>" tasks=1",
        "info run queued | file="projects/ok.json" run="<ok>.r1" tasks=1",
        "info run queued | file="projects/slow.json" run="<slow>" tasks=1",
        "info task failed; retrying after backoff | attempt=1 delayMs=1000 next=2 run="<flaky>" task="x"",
        "info task finished | attempt=1 exitCode=0 run="<ok>" task="a" timedOut=false",
        "info task finished | attempt=1 exitCode=0 run="<ok>.r1" task="a" timedOut=false",
        "info task finished | attempt=1 exitCode=4 run="<flaky>" task="x" timedOut=false",
        "info task finished | attempt=2 exitCode=4 run="<flaky>" task="x" timedOut=false",
        "info task killed: its run was cancelled | attempt=1 run="<slow>" task="s"",
        "info worker started | concurrency=2 executor="memory" readAhead=0",
        "warn project rejected | error="projects/: $: the push adds or changes 5 project files; at most 4 may come in one push (GITJOBS_PUSH_FILES), so none of them run. Push them in smaller batches." file="projects/" run="projects-aa466c3"",
        "warn project rejected | error="projects/bad.json: $.tasks: Invalid input: expected array, received number" file="projects/bad.json" run="<bad>"",
        "warn push refused: too many project files | after="<sha>" files=5 limit=4",
        "warn task failed for good; message sent to the dead-letter queue | attempt=1 attempts=1 reason="worker image: building workers/broken at config c8161cf failed: RUN exited 1" run="<image>" task="i"",
        "warn task failed for good; message sent to the dead-letter queue | attempt=2 attempts=2 reason="exit 4" run="<flaky>" task="x"",
      ]
    `);
  });
});
