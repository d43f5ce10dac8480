/**
 * Watching it work: live logs over SSE, Prometheus metrics, the CLI's
 * progress in a pseudo-terminal, and the dashboard in real headless Chromium.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEvents } from '../../src/client/sse.js';
import { runIdFor } from '../../src/core/ids.js';
import { waitFor } from '../helpers/processes.js';
import { rmTree, startStack, tmpdir, type Stack } from '../helpers/stack.js';

const CLI = path.resolve('dist/cli/main.js');
let stack: Stack;
let base: string;
beforeAll(async () => {
  stack = await startStack({ workers: 2 });
  base = stack.running.url;
});
afterAll(async () => {
  await stack?.stop();
});

/** Reads Server-Sent Events from a URL until `until` says stop. */
async function sse(url: string, until: (events: { event: string; data: unknown; at: number }[]) => boolean, timeoutMs = 30_000, opened?: () => void) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const events: { event: string; data: unknown; at: number }[] = [];
  const res = await fetch(url, { signal: controller.signal });
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  opened?.();
  try {
    for await (const e of readEvents(res.body as unknown as AsyncIterable<Uint8Array>)) {
      events.push({ ...e, at: Date.now() });
      if (until(events)) {
        controller.abort();
        return events;
      }
    }
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  } finally {
    clearTimeout(timer);
  }
  return events;
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(args[0]!, args.slice(1), { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('live logs', () => {
  it('stream a running task’s output before the task ends, then end with its state', async () => {
    // The task would run ten minutes after its first line: seeing that line while tracking says it runs is seeing it live.
    const commit = await stack.push({ 'projects/stream.json': JSON.stringify({ tasks: [{ id: 's', run: 'echo first; sleep 600; echo never' }] }) });
    const runId = runIdFor('projects/stream.json', commit);
    await waitFor('running', async () => (await stack.readRun(runId))?.tasks[0]!.state === 'running');
    let whileRunning: Promise<string> | undefined;
    const events = await sse(`${base}/api/runs/${runId}/tasks/s/log`, (ev) => {
      if (!whileRunning && ev.some((e) => e.event === 'output' && (e.data as string).includes('first'))) {
        whileRunning = (async () => {
          const state = (await stack.readRun(runId))!.tasks[0]!.state;
          await fetch(`${base}/api/runs/${runId}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
          return state;
        })();
      }
      return ev.some((e) => e.event === 'end');
    });
    expect(await whileRunning).toBe('running');
    expect(events.filter((e) => e.event === 'output').map((e) => e.data as string).join('')).toBe('first\n');
    expect(events.at(-1)).toMatchObject({ event: 'end', data: { state: 'cancelled', exitCode: null } });
    // What it printed before it was killed is kept as its log in tracking, once its worker reports it.
    const logs = await waitFor('the cancelled task’s log in tracking', async () => {
      const r = await cli([process.execPath, CLI, 'logs', runId, 's', '--url', base]);
      return r.stdout === 'first\n' && r;
    });
    expect(logs.stdout).not.toContain('never');
    const after = await sse(`${base}/api/runs/${runId}/tasks/s/log`, (ev) => ev.some((e) => e.event === 'end'));
    expect(after.map((e) => e.event)).toEqual(['log', 'end']);
    expect(after[0]!.data).toBe('first\n');
    expect(after.at(-1)).toMatchObject({ event: 'end', data: { state: 'cancelled' } });
  });

  it('end with the whole log from tracking once the task is done, for the API and `gitjobs logs`', async () => {
    const commit = await stack.push({ 'projects/logged.json': JSON.stringify({ tasks: [{ id: 's', run: 'echo first; echo second' }] }) });
    const runId = runIdFor('projects/logged.json', commit);
    await stack.waitForRun(runId);
    const after = await sse(`${base}/api/runs/${runId}/tasks/s/log`, (ev) => ev.some((e) => e.event === 'end'));
    expect(after.map((e) => e.event)).toEqual(['log', 'end']);
    expect(after[0]!.data).toBe('first\nsecond\n');
    expect(after[1]!.data).toMatchObject({ state: 'succeeded', exitCode: 0 });
    const logs = await cli([process.execPath, CLI, 'logs', runId, 's', '--url', base]);
    expect(logs.stdout).toBe('first\nsecond\n');
  });
});

describe('metrics', () => {
  const parse = (text: string) => {
    const samples = new Map<string, number>();
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
      expect(m, `not Prometheus text: ${line}`).toBeTruthy();
      samples.set(m![1]!, Number(m![2]));
    }
    return samples;
  };

  it('parse as Prometheus text, and move when a run completes', async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const before = parse(await res.text());
    const commit = await stack.push({ 'projects/metered.json': JSON.stringify({ tasks: [{ id: 'a', run: 'echo a' }, { id: 'b', run: 'echo b' }] }) });
    await stack.waitForRun(runIdFor('projects/metered.json', commit));
    const finished = (m: Map<string, number>) => m.get('gitjobs_runs_finished_total{state="succeeded"}') ?? 0;
    // The finish is counted once its tracking commit is written, which a reader of tracking may see a moment earlier.
    let after = new Map<string, number>();
    await waitFor('the finished run counted in /metrics', async () => {
      after = parse(await (await fetch(`${base}/metrics`)).text());
      return finished(after) > finished(before);
    }, 10_000);
    expect(finished(after)).toBe(finished(before) + 1);
    expect(after.get('gitjobs_transitions_total{to="succeeded"}')! - (before.get('gitjobs_transitions_total{to="succeeded"}') ?? 0)).toBe(2);
    expect(after.get('gitjobs_task_duration_seconds_count{state="succeeded"}')).toBeGreaterThanOrEqual(2);
    expect(after.get('gitjobs_task_queue_wait_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(after.get('gitjobs_transition_commit_seconds_count{repo="tache_suivi"}')).toBeGreaterThanOrEqual(4);
    expect(after.get('gitjobs_runs{state="succeeded"}')).toBeGreaterThanOrEqual(1);
    expect(after.get('gitjobs_tasks{state="succeeded"}')).toBeGreaterThanOrEqual(2);
    expect(after.get('gitjobs_queue_messages{queue="todo"}')).toBe(0);
    expect(after.get('gitjobs_workers')).toBe(1);
  });
});

describe('submit --wait in a pseudo-terminal', () => {
  it('draws a progress bar and exits 0 on success, non-zero on failure', async () => {
    const dir = tmpdir('pty');
    fs.writeFileSync(path.join(dir, 'ok.json'), JSON.stringify({ tasks: [{ id: 'a', run: 'sleep 1; echo fine' }, { id: 'b', run: 'echo too' }] }));
    fs.writeFileSync(path.join(dir, 'bad.json'), JSON.stringify({ tasks: [{ id: 'a', run: 'sleep 1; exit 4' }] }));
    const run = (file: string) => cli(['script', '-qec', `${process.execPath} ${CLI} submit ${path.join(dir, file)} --wait --url ${base}`, '/dev/null'], { GITJOBS_QUEUE_PREFIX: stack.settings.queues.todo.replace(/\.TODO$/, '') });
    const ok = await run('ok.json');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/\r\x1b\[2K\S+ \[[█░]{24}\] \d\/2 done/);
    expect(ok.stdout).toContain('[████████████████████████] 2/2 done');
    expect(ok.stdout).toContain('result (succeeded):');
    const bad = await run('bad.json');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('1/1 done, 1 failed');
    expect(bad.stdout).toContain('task a failed: exit 4');
    rmTree(dir);
  });
});

describe('dashboard', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('shows a pushed run, follows a task from queued to succeeded without a reload, opens its log and a commit', async () => {
    const page = await browser.newPage();
    let loads = 0;
    page.on('load', () => loads++);
    await page.goto(`${base}/`);
    await page.getByRole('status').filter({ hasText: 'live' }).waitFor();
    const commit = await stack.push({ 'projects/watched.json': JSON.stringify({ tasks: [{ id: 'slow', run: 'echo starting; sleep 3; echo finished' }] }) });
    const runId = runIdFor('projects/watched.json', commit);
    const link = page.getByRole('link', { name: runId });
    await link.waitFor({ timeout: 20_000 });
    await link.click();
    const stateCell = page.locator('tr[data-task="slow"] td.task-state');
    await stateCell.filter({ hasText: /queued|running/ }).waitFor({ timeout: 20_000 });
    const seen = [await stateCell.textContent()];
    await page.getByRole('button', { name: 'log' }).click();
    await page.locator('pre.log').filter({ hasText: 'starting' }).waitFor({ timeout: 20_000 });
    await stateCell.filter({ hasText: 'succeeded' }).waitFor({ timeout: 30_000 });
    seen.push(await stateCell.textContent());
    expect(seen[0]).toMatch(/queued|running/);
    expect(seen.at(-1)).toBe('succeeded');
    await page.locator('pre.log').filter({ hasText: 'finished' }).waitFor({ timeout: 10_000 });
    expect(loads).toBe(1);
    fs.mkdirSync('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/dashboard.png', fullPage: true });
    const commitLink = page.locator('tr[data-task="slow"] a').filter({ hasText: 'running -> succeeded' });
    await commitLink.click();
    await page.waitForURL(/\/git\/tache_suivi\.git\/commit\/[0-9a-f]{40}$/);
    const body = await page.textContent('body');
    expect(body).toMatch(new RegExp(`${runId}/slow: running -> succeeded`));
    expect(body).toContain('Worker-Host:');
  });

  it('cancels a running run and re-runs it from its page, by keyboard', async () => {
    const page = await browser.newPage();
    const commit = await stack.push({ 'projects/clicked.json': JSON.stringify({ tasks: [{ id: 'long', run: 'echo begun; sleep 60' }] }) });
    const runId = runIdFor('projects/clicked.json', commit);
    await page.goto(`${base}/#/runs/${runId}`);
    const stateCell = page.locator('tr[data-task="long"] td.task-state');
    await stateCell.filter({ hasText: 'running' }).waitFor({ timeout: 20_000 });
    const cancel = page.getByRole('button', { name: 'Cancel run' });
    const rerun = page.getByRole('button', { name: 'Re-run', exact: true });
    expect(await rerun.isVisible()).toBe(false);
    await cancel.focus();
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'cancelled: 1 unfinished task stopped' }).waitFor();
    await stateCell.filter({ hasText: 'cancelled' }).waitFor({ timeout: 20_000 });
    // Once the result is in, the run can only be run again.
    await rerun.waitFor({ state: 'visible', timeout: 20_000 });
    expect(await cancel.isVisible()).toBe(false);
    await rerun.focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(new RegExp(`#/runs/${runId}\\.r1$`));
    await page.getByRole('heading', { name: new RegExp(`^Run ${runId}\\.r1`) }).waitFor();
    await page.getByRole('link', { name: runId, exact: true }).waitFor();
    await stateCell.filter({ hasText: /queued|running/ }).waitFor({ timeout: 20_000 });
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await stateCell.filter({ hasText: 'cancelled' }).waitFor({ timeout: 20_000 });
    const again = await stack.waitForRun(`${runId}.r1`, 30_000);
    expect(again.run.rerunOf).toBe(runId);
    expect(again.run.state).toBe('cancelled');
    await page.screenshot({ path: 'test-artifacts/run-actions.png', fullPage: true });
  });

  it('re-runs only the failed part of a run from its page: what succeeded shows as reused', async () => {
    const page = await browser.newPage();
    const commit = await stack.push({ 'projects/half.json': JSON.stringify({ tasks: [{ id: 'good', run: 'echo good' }, { id: 'bad', run: 'exit 4' }] }) });
    const runId = runIdFor('projects/half.json', commit);
    await stack.waitForRun(runId, 60_000);
    await page.goto(`${base}/#/runs/${runId}`);
    const failedOnly = page.getByRole('button', { name: 'Re-run failed' });
    await failedOnly.waitFor({ state: 'visible', timeout: 20_000 });
    await failedOnly.click();
    await page.waitForURL(new RegExp(`#/runs/${runId}\\.r1$`));
    const good = page.locator('tr[data-task="good"] td.task-state');
    await good.filter({ hasText: `succeeded reused from ${runId}` }).waitFor({ timeout: 20_000 });
    await page.locator('tr[data-task="bad"] td.task-state').filter({ hasText: 'failed' }).waitFor({ timeout: 30_000 });
    const again = await stack.waitForRun(`${runId}.r1`, 30_000);
    expect(again.tasks.map((t) => [t.id, t.state, t.attempts])).toEqual([
      ['good', 'succeeded', 0],
      ['bad', 'failed', 1],
    ]);
    // A run that succeeded whole has nothing to re-run in part.
    const ok = await stack.push({ 'projects/whole.json': JSON.stringify({ tasks: [{ id: 'x', run: 'true' }] }) });
    const okId = runIdFor('projects/whole.json', ok);
    await stack.waitForRun(okId, 60_000);
    await page.goto(`${base}/#/runs/${okId}`);
    // The same page, another hash: wait for this run's page, not the re-run's still on screen.
    await page.getByRole('heading', { name: new RegExp(`^Run ${okId}`) }).waitFor({ timeout: 20_000 });
    await page.getByRole('button', { name: 'Re-run', exact: true }).waitFor({ state: 'visible', timeout: 20_000 });
    expect(await failedOnly.isVisible()).toBe(false);
  });

  it("draws a run's dependency graph with each task's state, and a timeline of when each task ran on which worker", async () => {
    const page = await browser.newPage();
    const project = {
      tasks: [
        { id: 'a', run: 'sleep 0.3; echo a; echo report > $GITJOBS_OUT/report.txt', out: true },
        { id: 'b', run: 'exit 2' },
        { id: 'c', run: 'echo c', needs: ['a'] },
        { id: 'd', run: 'echo d', needs: ['b'] },
        { id: 'e', run: 'echo e', needs: ['c', 'd'] },
      ],
    };
    const commit = await stack.push({ 'projects/shape.json': JSON.stringify(project) });
    const runId = runIdFor('projects/shape.json', commit);
    await stack.waitForRun(runId, 60_000);
    await page.goto(`${base}/#/runs/${runId}`);
    await page.getByRole('img', { name: 'Dependency graph: 5 tasks, 4 dependencies' }).waitFor({ timeout: 20_000 });
    // Read in one go inside the page, so that no redraw falls between two reads.
    const nodes = await page.evaluate(() =>
      Object.fromEntries(
        [...document.querySelectorAll('#graph g.node')].map((n) => [n.getAttribute('data-task') ?? '', { state: n.getAttribute('data-state'), x: Number(n.querySelector('rect')!.getAttribute('x')), colour: getComputedStyle(n).color }]),
      ),
    );
    expect(Object.fromEntries(Object.entries(nodes).map(([id, n]) => [id, n.state]))).toEqual({ a: 'succeeded', b: 'failed', c: 'succeeded', d: 'skipped', e: 'skipped' });
    // Laid out by what they need: each task to the right of what it needs.
    expect(nodes.c!.x).toBeGreaterThan(nodes.a!.x);
    expect(nodes.e!.x).toBeGreaterThan(nodes.c!.x);
    expect(await page.locator('#graph path.edge').count()).toBe(4);
    // The failed and skipped nodes are drawn in the failure colour, the succeeded ones in the success colour.
    expect(nodes.b!.colour).toMatch(/^rgb/);
    expect(nodes.d!.colour).toBe(nodes.b!.colour);
    expect(nodes.a!.colour).not.toBe(nodes.b!.colour);
    // Timeline: one bar per task that ran (not the skipped ones), named by worker; c starts after a ends.
    await page.getByRole('img', { name: /^Timeline: 3 tasks over / }).waitFor();
    const rows = await page.evaluate(() =>
      [...document.querySelectorAll('#timeline rect.bar')].map((r) => ({ task: r.parentElement!.getAttribute('data-task'), worker: r.getAttribute('data-worker'), from: Number(r.getAttribute('data-from')), to: Number(r.getAttribute('data-to')) })),
    );
    expect(rows.map((r) => r.task)).toEqual(['a', 'b', 'c']);
    for (const r of rows) expect(r.worker).toMatch(/\S+:\d+$/);
    const [a, , c] = rows;
    expect(c!.from).toBeGreaterThanOrEqual(a!.to);
    // What a wrote under /out is named in its row, each file's path, size and blob on hover.
    const files = page.locator('tr[data-task="a"] td.task-state span.files');
    expect(await files.textContent()).toBe('1 file in done');
    expect(await files.getAttribute('title')).toMatch(/^report\.txt \(7 B, blob [0-9a-f]{12}\)$/);
    expect(await page.locator('tr[data-task="c"] td.task-state span.files').count()).toBe(0);
    await page.screenshot({ path: 'test-artifacts/run-shape.png', fullPage: true });
  });

  it('the Queues page creates a queue, sends, takes in order, says when it is empty, and deletes it — through real RabbitMQ', async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    await page.getByRole('link', { name: 'Queues' }).click();
    await page.getByRole('heading', { name: 'Queue web services' }).waitFor();
    const queue = `dashboard-queue-${process.pid}`;
    await page.getByLabel('Queue').fill(queue);
    const result = page.locator('#qresult');
    const press = async (name: string, expected: RegExp) => {
      // By keyboard, as well as a mouse would.
      await page.getByRole('button', { name }).focus();
      await page.keyboard.press('Enter');
      await result.filter({ hasText: expected }).waitFor({ timeout: 10_000 });
    };
    await press('Create', /^create: 201/);
    for (const phrase of ['la tache numero 0 dit bonjour', 'la tache numero 1 dit bonjour']) {
      await page.getByLabel('Message').fill(phrase);
      await press('Send', /^send: 202/);
      await result.evaluate((el) => (el.textContent = ''));
    }
    await press('Take one', /^take: 200 OK\nla tache numero 0 dit bonjour$/);
    await result.evaluate((el) => (el.textContent = ''));
    await press('Take one', /^take: 200 OK\nla tache numero 1 dit bonjour$/);
    await press('Take one', /^take: 204 No Content\n\(empty: no message waiting\)$/);
    await press('Delete', /^delete: 204 No Content\n\(deleted\)$/);
    expect((await fetch(`${base}/api/queues/${queue}/messages`)).status).toBe(404);
    await page.screenshot({ path: 'test-artifacts/queues.png', fullPage: true });
  });
});
