/**
 * The `gitjobs` command as a user runs it: `up` in one process, `submit
 * --wait` and `status` in others, the git CLI in between.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmqpQueue } from '../../src/adapters/amqp/queue.js';
import { prefixedQueues } from '../../src/core/settings.js';
import { AMQP_URL, git, gitAsync, rmTree, tmpdir } from '../helpers/stack.js';

const CLI = path.resolve('dist/cli/main.js');
const prefix = `test-cli-${process.pid}`;
const home = tmpdir('cli-home');
const work = tmpdir('cli-work');
let server: ChildProcess;
let worker: ChildProcess;
let url = '';
let serverOut = '';

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, GITJOBS_QUEUE_PREFIX: prefix, GITJOBS_LOG_LEVEL: 'warn', ...env }, cwd: work });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `gitjobs up` without workers and a separate `gitjobs worker` process, as on a second machine. */
async function startPair(queuePrefix: string, upHome: string): Promise<{ server: ChildProcess; worker: ChildProcess; url: string; out: () => string }> {
  const env = { ...process.env, GITJOBS_QUEUE_PREFIX: queuePrefix };
  const up = spawn(process.execPath, [CLI, 'up', '--home', upHome, '--port', '0', '--workers', '0', '--log-level', 'warn'], { env });
  let out = '';
  up.stderr!.on('data', (d) => (out += d));
  const upUrl = await new Promise<string>((resolve, reject) => {
    up.stdout!.on('data', (d) => {
      out += d;
      const m = /gitjobs is up at (http:\/\/\S+)/.exec(out);
      if (m && out.includes('Ctrl-C stops')) resolve(m[1]!);
    });
    up.on('exit', (code) => reject(new Error(`gitjobs up exited ${code}: ${out}`)));
  });
  const w = spawn(process.execPath, [CLI, 'worker', '--workers', '2', '--cache', path.join(upHome, '.worker-cache'), '--log-level', 'warn'], { env });
  let workerOut = '';
  await new Promise<void>((resolve, reject) => {
    w.stdout!.on('data', (d) => {
      workerOut += d;
      if (workerOut.includes('taking tasks from')) resolve();
    });
    w.on('exit', (code) => reject(new Error(`gitjobs worker exited ${code}`)));
  });
  return { server: up, worker: w, url: upUrl, out: () => out };
}

async function deleteQueues(queuePrefix: string): Promise<void> {
  const q = await AmqpQueue.connect({ url: AMQP_URL, queues: prefixedQueues(queuePrefix) });
  await q.deleteQueues();
  await q.close();
}

beforeAll(async () => {
  if (!fs.existsSync(CLI)) throw new Error('run `npm run build` first (npm test does)');
  const pair = await startPair(prefix, home);
  server = pair.server;
  worker = pair.worker;
  url = pair.url;
  serverOut = pair.out();
});

afterAll(async () => {
  for (const p of [server, worker]) if (p && p.exitCode === null) p.kill('SIGKILL');
  await deleteQueues(prefix);
  rmTree(home);
  rmTree(work);
});

/** Writes a project file under a name of this test's own and submits it; `--wait` unless told not to. */
async function submitted(name: string, project: object, wait = true): Promise<{ run: string; code: number | null; stdout: string }> {
  fs.writeFileSync(path.join(work, `${name}.json`), JSON.stringify(project));
  const r = await cli(['submit', `${name}.json`, ...(wait ? ['--wait'] : []), '--url', url]);
  const run = new RegExp(`run (${name}-[0-9a-f]{7})`).exec(r.stdout)?.[1];
  if (!run) throw new Error(`submit printed no run: ${r.stdout}${r.stderr}`);
  return { run, code: r.code, stdout: r.stdout };
}

/**
 * A worker folder of a test's own in a clone of the config repository: `write` commits and pushes a
 * new Dockerfile for it (its lines between the base image and the user), as a person with git would.
 */
async function ownWorker(name: string): Promise<{ dir: string; write(lines: string, message: string): Promise<void> }> {
  const dir = tmpdir(`cli-config-${name}`);
  await gitAsync(dir, 'clone', '-q', `${url}/git/config.git`, '.');
  const dockerfile = path.join(dir, 'workers', name, 'Dockerfile');
  fs.mkdirSync(path.dirname(dockerfile), { recursive: true });
  return {
    dir,
    async write(lines, message) {
      fs.writeFileSync(dockerfile, `ARG BASE_IMAGE=gitjobs-base:latest\nFROM \${BASE_IMAGE}\n${lines}USER 1000:1000\n`);
      git(dir, 'add', '-A');
      git(dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', message);
      await gitAsync(dir, 'push', '-q', 'origin', 'main');
    },
  };
}

/** Waits until `status RUN` answers (tracking has recorded the run). */
async function recorded(run: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await cli(['status', run, '--url', url])).code === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`run ${run} never recorded`);
}

describe('gitjobs CLI', () => {
  it('up prints the clone URLs of the four repositories', () => {
    for (const repo of ['tache_a_faire', 'tache_suivi', 'tache_termine', 'config']) expect(serverOut).toContain(`${url}/git/${repo}.git`);
  });

  it('submit --wait pushes a project, shows progress, prints the result and exits 0', async () => {
    fs.writeFileSync(path.join(work, 'hello.json'), JSON.stringify({ project: 'hello', tasks: [{ id: 'a', run: 'echo hello' }, { id: 'b', run: ['echo', 'x'] }] }));
    const r = await cli(['submit', 'hello.json', '--wait', '--url', url]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pushed projects\/hello\.json as [0-9a-f]{7} to tache_a_faire; run hello-[0-9a-f]{7}$/m);
    expect(r.stdout).toMatch(/hello-[0-9a-f]{7}: succeeded, 2\/2 tasks done/);
    expect(r.stdout.endsWith('result (succeeded):\nhello\nx\n')).toBe(true);
  });

  it('files in and out through a separate `gitjobs worker`: its only link to up is the broker', async () => {
    fs.copyFileSync(path.resolve('repos-template/todo/examples/files.json'), path.join(work, 'files.json'));
    const r = await cli(['submit', 'files.json', '--wait', '--url', url]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.endsWith('result (succeeded):\nmaking\nsum 15\nhello\n')).toBe(true);
    const run = /run (files-[0-9a-f]{7})$/m.exec(r.stdout)![1]!;
    const done = tmpdir('gitjobs-cli-done-');
    await gitAsync(done, 'clone', '-q', `${url}/git/tache_termine.git`, '.');
    const listed = git(done, 'ls-tree', '-r', '--name-only', 'HEAD').split('\n').filter((f) => f.includes(`/${run}/files/`));
    expect(listed.map((f) => f.slice(f.indexOf('/files/')))).toEqual(['/files/make/notes/hello.txt', '/files/make/numbers.txt']);
  });

  it('submit --wait exits non-zero when a task fails, and shows why', async () => {
    fs.writeFileSync(path.join(work, 'fail.json'), JSON.stringify({ tasks: [{ id: 'boom', run: 'echo broken >&2; exit 3' }] }));
    const r = await cli(['submit', 'fail.json', '--wait', '--url', url]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('task boom failed: exit 3');
    expect(r.stdout).toContain('  | broken');
    expect(r.stdout).toContain('result (failed):\nFAILED: 1 of 1 task failed: boom (exit 3)');
  });

  it('submit --wait exits 2 with the reason when the file is rejected', async () => {
    fs.writeFileSync(path.join(work, 'bad.json'), '{"tasks": [{"id": "a/b", "run": "true"}]}');
    const r = await cli(['submit', 'bad.json', '--wait', '--url', url]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('rejected: projects/bad.json: $.tasks[0].id: must be 1 to 64 characters');
  });

  it('submit refuses to push a file the todo repository already has unchanged', async () => {
    await submitted('same', { tasks: [{ id: 'a', run: 'true' }] });
    const r = await cli(['submit', 'same.json', '--url', url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('projects/same.json already has this content');
    expect(r.stderr).toContain('--as NAME');
  });

  it('submit --as puts the file in a folder of projects/, one commit on the tip with every other file as it was; names that leave projects/ are refused', async () => {
    const todo = path.join(home, 'repos', 'tache_a_faire.git');
    const before = git(todo, 'ls-tree', '-r', 'main').split('\n');
    const tip = git(todo, 'rev-parse', 'main').trim();
    fs.writeFileSync(path.join(work, 'nested.json'), JSON.stringify({ tasks: [{ id: 'a', run: 'echo nested' }] }));
    const r = await cli(['submit', 'nested.json', '--as', 'team/nested', '--wait', '--url', url]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pushed projects\/team\/nested\.json as [0-9a-f]{7} to tache_a_faire/m);
    expect(r.stdout.endsWith('result (succeeded):\nnested\n')).toBe(true);
    expect(git(todo, 'rev-parse', 'main~1').trim()).toBe(tip);
    const blob = git(todo, 'hash-object', path.join(work, 'nested.json')).trim();
    const after = git(todo, 'ls-tree', '-r', 'main').split('\n');
    expect(after.filter((l) => !before.includes(l))).toEqual([`100644 blob ${blob}\tprojects/team/nested.json`]);
    expect(before.filter((l) => !after.includes(l))).toEqual([]);
    git(todo, 'fsck', '--strict');
    for (const bad of ['../escape', 'team//x', 'a/./b', '.git/config']) {
      const refused = await cli(['submit', 'nested.json', '--as', bad, '--url', url]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`${JSON.stringify(bad)} is not a file name under projects/`);
    }
    expect(git(todo, 'rev-parse', 'main~1').trim()).toBe(tip);
  });

  it('rerun runs a finished run again as RUN.r1, follows it with --wait, and counts re-runs from the first run', async () => {
    const { run: first } = await submitted('again', { tasks: [{ id: 'a', run: 'echo hello' }, { id: 'b', run: ['echo', 'x'] }] });
    const { run: failed } = await submitted('flaky', { tasks: [{ id: 'boom', run: 'exit 3' }] });
    const r = await cli(['rerun', first, '--wait', '--url', url]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`run ${first} re-run as ${first}.r1 (2 tasks queued)\n`);
    expect(r.stdout.endsWith('result (succeeded):\nhello\nx\n')).toBe(true);
    // A re-run of a re-run is numbered from the first run.
    expect((await cli(['rerun', `${first}.r1`, '--url', url])).stdout).toBe(`run ${first}.r1 re-run as ${first}.r2 (2 tasks queued)\n`);
    expect((await cli(['status', `${first}.r1`, '--url', url])).stdout).toContain(`re-run of ${first}\n`);
    const tracking = path.join(home, 'repos', 'tache_suivi.git');
    const queued = git(tracking, 'log', '--format=%s|%(trailers:key=Rerun-Of,valueonly)', 'main').split('\n').filter((l) => l.startsWith(`${first}.r1: `));
    expect(queued).toContain(`${first}.r1: queued (2 tasks from projects/again.json, re-run of ${first})|${first}`);
    // The same inputs fail the same way: --wait says so.
    const again = await cli(['rerun', failed, '--wait', '--url', url]);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain('task boom failed: exit 3');
    const unknown = await cli(['rerun', 'nope-1234567', '--url', url]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('gitjobs rerun: no run nope-1234567 in tache_suivi\n');
  });

  it('rerun --failed after the config is fixed runs only the failed task, in the fixed image, and the result is whole; diff shows what changed; --pinned runs the old config again; verify finds a changed byte', async () => {
    // A worker whose image lacks what one task needs.
    const fixme = await ownWorker('fixme');
    await fixme.write('', 'Add the fixme worker');
    const { run: first, code } = await submitted('partly', { worker: 'fixme', tasks: [{ id: 'a', run: 'echo A' }, { id: 'b', run: 'cat /fixed' }, { id: 'c', run: 'echo C' }] });
    expect(code).toBe(1);
    await fixme.write('RUN echo B > /fixed\n', 'fixme: the file task b reads');
    const r = await cli(['rerun', first, '--failed', '--wait', '--url', url]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`run ${first} re-run as ${first}.r1 (1 task queued, 2 reused from ${first})\n`);
    expect(r.stdout.endsWith('result (succeeded):\nA\nB\nC\n')).toBe(true);
    expect(r.code).toBe(0);
    // Only b ran: a and c went from queued to succeeded, naming where their results come from.
    const tracking = path.join(home, 'repos', 'tache_suivi.git');
    const subjects = git(tracking, 'log', '--reverse', '--format=%s', 'main').split('\n').filter((l) => l.startsWith(`${first}.r1/`));
    expect(subjects.filter((l) => l.includes('queued -> running'))).toEqual([expect.stringMatching(new RegExp(`^${first}\\.r1/b: queued -> running`))]);
    expect(subjects.filter((l) => l.includes('reused from')).map((l) => l.split(' (')[0])).toEqual([`${first}.r1/a: queued -> succeeded`, `${first}.r1/c: queued -> succeeded`]);
    const trailer = git(tracking, 'log', '-1', '--format=%(trailers:key=Reused-From,valueonly)', '--grep', `^${first}.r1/a: `, 'main').trim();
    expect(trailer).toMatch(new RegExp(`^${first}/a@[0-9a-f]{40}$`));
    // diff: b changed (state, exit, output, image: the fixed one); a and c are the same bytes, reused.
    const d = await cli(['diff', first, `${first}.r1`, '--url', url]);
    expect(d.code).toBe(1);
    const lines = d.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`${first} -> ${first}.r1: 3 tasks, 1 differs`);
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatch(/^b\s+failed -> succeeded\s+1 -> 0\s+[0-9a-f]{10} -> [0-9a-f]{10}\s+[0-9a-f]{10} -> [0-9a-f]{10}\s+\S+ -> \S+$/);
    const all = await cli(['diff', first, `${first}.r1`, '--all', '--url', url]);
    expect(all.stdout).toMatch(new RegExp(`\\na\\s+succeeded \\(reused from ${first}/a\\)\\s+0\\s+[0-9a-f]{10}\\s`));
    expect((await cli(['diff', first, first, '--url', url])).code).toBe(0);
    const missing = await cli(['diff', first, 'nope-1234567', '--url', url]);
    expect([missing.code, missing.stderr.split('\n')[0]]).toEqual([2, 'gitjobs diff: no run nope-1234567 in tache_suivi']);
    // Pinned to the first run's config (before the fix): b fails there again; each task names the base image.
    const pinned = await cli(['rerun', first, '--pinned', '--wait', '--url', url]);
    expect(pinned.code).toBe(1);
    expect(pinned.stdout).toContain(`run ${first} re-run as ${first}.r2 (3 tasks queued)\npinned to the config commit of ${first}\n`);
    expect(pinned.stdout).not.toContain('base image has changed');
    const views = await Promise.all([first, `${first}.r2`].map(async (id) => (await fetch(`${url}/api/runs/${id}`)).json() as Promise<{ run: { configCommit: string }; tasks: { id: string; state: string; worker: { base?: string } }[] }>));
    expect(views[1]!.run.configCommit).toBe(views[0]!.run.configCommit);
    expect(views[1]!.tasks.map((t) => t.state)).toEqual(['succeeded', 'failed', 'succeeded']);
    const base = execFileSync('docker', ['image', 'inspect', '--format', '{{.Id}}', 'gitjobs-base:latest'], { encoding: 'utf8' }).trim();
    expect(views[1]!.tasks.map((t) => t.worker.base)).toEqual([base, base, base]);
    // And nothing failed in the re-run: nothing to re-run of it.
    const none = await cli(['rerun', `${first}.r1`, '--failed', '--url', url]);
    expect(none.code).toBe(1);
    expect(none.stderr).toBe(`gitjobs rerun: every task of run ${first}.r1 succeeded: nothing to re-run (re-run it whole without "failed")\n`);
    // verify from clones: all holds; then one byte of a committed log changed in a clone of tracking is found.
    const ok = await cli(['verify', `${first}.r1`, '--url', url]);
    expect([ok.code, ok.stderr]).toEqual([0, '']);
    expect(ok.stdout).toBe(`${first}.r1: verified 3 tasks (succeeded): every transition allowed, outputs and files are the blobs result.json names, the result is what they reduce to, the commits named exist\n`);
    const clone = tmpdir('cli-verify');
    await gitAsync(clone, 'clone', '-q', `${url}/git/tache_suivi.git`, '.');
    const logFile = git(clone, 'ls-files').split('\n').find((f) => f.includes(`/${first}.r1/`) && f.endsWith('/c.log'))!;
    fs.writeFileSync(path.join(clone, logFile), 'D\n');
    git(clone, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qam', 'one byte changed');
    const bad = await cli(['verify', `${first}.r1`, '--tracking', clone, '--url', url]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`${first}.r1: 3 differences\n`);
    expect(bad.stdout).toContain("- result.json's value is not what reducing tracking's outputs gives\n");
    expect(bad.stdout).toMatch(/- c: its output in tracking is blob [0-9a-f]{12}, result.json names [0-9a-f]{12}\n/);
    expect(bad.stdout).toContain('- result.txt is not what reducing tracking\'s outputs gives (first difference on line 3: expected "D", found "C")\n');
    const images = execFileSync('docker', ['images', '-q', '--filter', 'label=io.gitjobs.worker=fixme'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
    if (images.length) execFileSync('docker', ['image', 'rm', '-f', ...new Set(images)], { stdio: 'ignore' });
  });

  it('bisect finds, across five config commits, the one that broke a task, each step a run of its own', async () => {
    const config = tmpdir('cli-bisect');
    await gitAsync(config, 'clone', '-q', `${url}/git/config.git`, '.');
    const dockerfile = path.join(config, 'workers', 'bis', 'Dockerfile');
    fs.mkdirSync(path.dirname(dockerfile), { recursive: true });
    const commits: string[] = [];
    const commit = async (message: string, change: () => void) => {
      change();
      git(config, 'add', '-A');
      git(config, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', message);
      commits.push(git(config, 'rev-parse', 'HEAD').trim());
    };
    const withFile = 'ARG BASE_IMAGE=gitjobs-base:latest\nFROM ${BASE_IMAGE}\nRUN echo ok > /ok\nUSER 1000:1000\n';
    await commit('bis: a worker with /ok', () => fs.writeFileSync(dockerfile, withFile));
    await commit('docs: a note', () => fs.writeFileSync(path.join(config, 'NOTES.md'), 'one\n'));
    await commit('bis: tidy the Dockerfile', () => fs.writeFileSync(dockerfile, withFile.replace('RUN echo ok > /ok\n', 'RUN echo tidy > /tidy\n')));
    await commit('docs: another note', () => fs.writeFileSync(path.join(config, 'NOTES.md'), 'two\n'));
    await commit('docs: a third note', () => fs.writeFileSync(path.join(config, 'NOTES.md'), 'three\n'));
    await gitAsync(config, 'push', '-q', 'origin', 'main');
    const { run, code } = await submitted('bis', { worker: 'bis', tasks: [{ id: 'needs-ok', run: 'cat /ok' }, { id: 'other', run: 'true' }] });
    expect(code).toBe(1);
    const r = await cli(['bisect', run, 'needs-ok', '--good', commits[0]!.slice(0, 10), '--bad', commits[4]!, '--url', url]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`bisecting needs-ok of ${run}: 4 config commits after ${commits[0]!.slice(0, 7)}, up to ${commits[4]!.slice(0, 7)}`);
    expect(lines[1]).toBe(`step 1: config ${commits[2]!.slice(0, 7)} "bis: tidy the Dockerfile": bad (run ${run}.r1)`);
    expect(lines[2]).toBe(`step 2: config ${commits[1]!.slice(0, 7)} "docs: a note": good (run ${run}.r2)`);
    expect(lines[3]).toBe(`first bad config commit: ${commits[2]} bis: tidy the Dockerfile`);
    // Each step is a run like any other: one task, at its config commit.
    const step = (await (await fetch(`${url}/api/runs/${run}.r2`)).json()) as { run: { configCommit: string; rerunOf: string }; tasks: { id: string }[] };
    expect(step.run).toMatchObject({ configCommit: commits[1], rerunOf: run });
    expect(step.tasks.map((t) => t.id)).toEqual(['needs-ok']);
    const wrong = await cli(['bisect', run, 'needs-ok', '--good', commits[4]!, '--bad', commits[0]!, '--url', url]);
    expect([wrong.code, wrong.stderr.split('\n')[0]]).toEqual([2, `gitjobs bisect: --good ${commits[4]} must be an earlier commit than --bad ${commits[0]} on the config history`]);
    const images = execFileSync('docker', ['images', '-q', '--filter', 'label=io.gitjobs.worker=bis'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
    if (images.length) execFileSync('docker', ['image', 'rm', '-f', ...new Set(images)], { stdio: 'ignore' });
  });

  it('rerun of a rejected run reads the same file at the same commit, and is rejected again, saying why', async () => {
    fs.writeFileSync(path.join(work, 'broken.json'), '{"tasks": [{"id": "a", "run": 7}]}');
    const sent = await cli(['submit', 'broken.json', '--wait', '--url', url]);
    expect(sent.code).toBe(2);
    const run = /run (broken-[0-9a-f]{7})/.exec(sent.stdout)![1]!;
    const r = await cli(['rerun', run, '--wait', '--url', url]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`run ${run} re-run as ${run}.r1`);
    expect(r.stdout).toContain('rejected: projects/broken.json: $.tasks[0].run');
  });

  it('rerun refuses a run that has not finished, and cancel ends it', async () => {
    const { run } = await submitted('slow', { tasks: [{ id: 's', run: 'sleep 600' }] }, false);
    await recorded(run);
    const r = await cli(['rerun', run, '--url', url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^gitjobs rerun: run ${run} is still (queued|running); it can be re-run once it has finished \\(or cancel it first\\)\n$`));
    const cancelled = await cli(['cancel', run, '--reason', 'not needed', '--url', url]);
    expect(cancelled.code).toBe(0);
    const watched = await cli(['watch', run, '--url', url]);
    expect(watched.stdout).toContain(`${run}: cancelled`);
    expect((await cli(['status', run, '--url', url])).stdout).toMatch(new RegExp(`^run ${run}  cancelled`));
  });

  it('watch follows a run to its end, and logs --follow streams a running task until it ends', async () => {
    const { run } = await submitted('lines', { tasks: [{ id: 't', run: 'for i in 1 2 3 4 5; do echo line$i; sleep 0.4; done' }] }, false);
    await recorded(run);
    const [watched, followed] = await Promise.all([cli(['watch', run, '--url', url]), cli(['logs', run, 't', '--follow', '--url', url])]);
    expect(watched.code).toBe(0);
    expect(watched.stdout).toContain(`${run}: succeeded, 1/1 tasks done`);
    expect(followed.code).toBe(0);
    expect(followed.stdout).toContain('line1\nline2\nline3\nline4\nline5\n');
    // Once finished, logs shows the whole log at once.
    expect((await cli(['logs', run, 't', '--url', url])).stdout).toContain('line1\nline2\nline3\nline4\nline5\n');
  });

  it('a plain git push starts a run too, and status reads it from tracking', async () => {
    const dir = tmpdir('cli-clone');
    await gitAsync(dir, 'clone', '-q', `${url}/git/tache_a_faire.git`, '.');
    fs.copyFileSync(path.join(dir, 'examples/prototype.json'), path.join(dir, 'projects/prototype.json'));
    git(dir, 'add', '-A');
    git(dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'prototype');
    await gitAsync(dir, 'push', '-q', 'origin', 'main');
    rmTree(dir);
    let listing = '';
    for (let i = 0; i < 100 && !/prototype-\S+\s+succeeded\s+3\/3/.test(listing); i++) {
      await new Promise((r) => setTimeout(r, 200));
      listing = (await cli(['status', '--url', url])).stdout;
    }
    expect(listing).toMatch(/^RUN\s+STATE\s+DONE\s+FAILED\s+FILE\s+CREATED$/m);
    expect(listing).toMatch(/prototype-\S+\s+succeeded\s+3\/3\s+0\s+projects\/prototype\.json/);
    const runId = /(prototype-[0-9a-f]{7})/.exec(listing)![1]!;
    const one = await cli(['status', runId, '--url', url]);
    expect(one.stdout).toMatch(new RegExp(`^run ${runId}  succeeded  3/3 done`));
    expect(one.stdout).toMatch(/^0\s+succeeded\s+1\/1\s+0\s+\d+\.\d\ds\s+\S+$/m);
    expect(one.stdout).toContain('\ntasks: 3 succeeded\n');
    const failedOnly = await cli(['status', runId, '--state', 'failed', '--url', url]);
    expect(failedOnly.stdout.endsWith('tasks: 3 succeeded\nno task is failed\n')).toBe(true);
    const badState = await cli(['status', runId, '--state', 'done', '--url', url]);
    expect(badState.code).toBe(2);
    expect(badState.stderr).toContain('--state "done": a task state is one of waiting, queued, running, succeeded, failed, skipped, cancelled');
    expect((await cli(['status', '--all', '--url', url])).stderr).toContain('--all and --state list the tasks of one run');
  });

  it('a project with "cache": true submitted again under another name starts no container and names the first run; a changed command or worker folder misses; --no-cache runs it', async () => {
    // A worker folder of this test's own, so that no other test's results are in the cache for it.
    const cached = await ownWorker('cached');
    await cached.write('', 'Add the cached worker');
    const project = { worker: 'cached', cache: true, tasks: [{ id: 'a', run: 'echo A' }, { id: 'b', run: 'echo B' }] };
    const since = Math.floor(Date.now() / 1000) - 1;
    const tracking = path.join(home, 'repos', 'tache_suivi.git');
    const subjectsOf = (run: string) => git(tracking, 'log', '--reverse', '--format=%s', 'main').split('\n').filter((l) => l.startsWith(`${run}/`));
    /** Task containers Docker created for a run (from its event log, whatever became of them). */
    const containersOf = (run: string) =>
      execFileSync('docker', ['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'type=container', '--filter', 'event=create', '--filter', `label=io.gitjobs.run=${run}`, '--format', '{{.ID}}'], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean).length;

    const first = await submitted('cached-one', project);
    expect(first.code).toBe(0);
    expect(containersOf(first.run)).toBe(2);
    const second = await submitted('cached-two', project);
    expect(second.code).toBe(0);
    expect(second.stdout.endsWith('result (succeeded):\nA\nB\n')).toBe(true);
    expect(containersOf(second.run)).toBe(0);
    const hits = subjectsOf(second.run);
    expect(hits).toHaveLength(2);
    for (const [i, t] of ['a', 'b'].entries()) expect(hits[i]).toMatch(new RegExp(`^${second.run}/${t}: queued -> succeeded \\(from cache: ${first.run}/${t} at [0-9a-f]{7}, ran \\S+ there, key [0-9a-f]{12}, no container\\)$`));
    const trailers = git(tracking, 'log', '-1', '--format=%(trailers:key=Cached-From,valueonly)%(trailers:key=Cache-Key,valueonly)', '--grep', `^${second.run}/a: `, 'main').trim().split('\n');
    expect(trailers[0]).toMatch(new RegExp(`^${first.run}/a@[0-9a-f]{40}$`));
    expect(trailers[1]).toMatch(/^[0-9a-f]{64}$/);
    const key = git(tracking, 'log', '-1', '--format=%(trailers:key=Cache-Key,valueonly)', '--grep', `^${first.run}/a: running -> succeeded`, 'main').trim();
    expect(key).toBe(trailers[1]);

    // Another command misses for its task only.
    const changed = await submitted('cached-three', { ...project, tasks: [{ id: 'a', run: 'echo A' }, { id: 'b', run: 'echo B2' }] });
    expect(changed.stdout.endsWith('result (succeeded):\nA\nB2\n')).toBe(true);
    expect(containersOf(changed.run)).toBe(1);
    expect(subjectsOf(changed.run).filter((l) => l.includes('queued -> running'))).toEqual([expect.stringMatching(new RegExp(`^${changed.run}/b: `))]);

    // `submit --no-cache` runs everything.
    fs.writeFileSync(path.join(work, 'cached-four.json'), JSON.stringify(project));
    const bypass = await cli(['submit', 'cached-four.json', '--no-cache', '--wait', '--url', url]);
    expect(bypass.code).toBe(0);
    const bypassRun = /run (cached-four-[0-9a-f]{7})/.exec(bypass.stdout)![1]!;
    expect(containersOf(bypassRun)).toBe(2);

    // A change to the worker's folder (a new image) misses for every task.
    await cached.write('ENV CHANGED=1\n', 'cached: another image');
    const rebuilt = await submitted('cached-five', project);
    expect(rebuilt.code).toBe(0);
    expect(containersOf(rebuilt.run)).toBe(2);
    rmTree(cached.dir);
  });

  it('worker and up stop cleanly on SIGTERM', async () => {
    // A pair of its own: the others keep theirs.
    const own = `${prefix}-stop`;
    const pair = await startPair(own, tmpdir('cli-stop'));
    try {
      for (const p of [pair.worker, pair.server]) {
        const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
        p.kill('SIGTERM');
        expect(await exited).toBe(0);
      }
    } finally {
      for (const p of [pair.worker, pair.server]) if (p.exitCode === null) p.kill('SIGKILL');
      await deleteQueues(own);
    }
  });

  it('demo pushes N-Queens through a real push and prints the result and the tracking log', async () => {
    const r = await cli(['demo', '--n', '6', '--executor', 'process', '--queue-prefix', `${prefix}-demo`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('gitjobs demo: N-Queens for n = 6, half the board searched (the other half is its mirror image), split into 2 tasks');
    expect(r.stdout).toMatch(/result \(succeeded\), from tache_termine\/runs\/\S+\/nqueens-6-[0-9a-f]{7}\/result\.txt: 4\nexpected: 4\n/);
    expect(r.stdout).toMatch(/git log --oneline of tache_suivi/);
    expect(r.stdout).toMatch(/nqueens-6-[0-9a-f]{7}: running -> succeeded/);
  });
});

describe('gitjobs CLI errors', () => {
  it('says when RabbitMQ cannot be reached, how to start it, and exits non-zero', async () => {
    const r = await cli(['up', '--home', tmpdir('nohome'), '--port', '0'], { GITJOBS_AMQP_URL: 'amqp://guest:guest@127.0.0.1:1' });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('RabbitMQ at amqp://guest:***@127.0.0.1:1 is not reachable');
    expect(r.stderr).toContain('rabbitmq-server -detached');
  });

  it('says when Docker cannot be reached, how to start it, and exits non-zero', async () => {
    const r = await cli(['worker'], { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('Docker is not reachable');
    expect(r.stderr).toContain('dockerd --bridge=none --iptables=false');
    expect(r.stderr).toContain('--executor process');
  });

  it('explains bad usage', async () => {
    const r = await cli(['up', '--workers', 'many']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--workers must be a whole number, not "many"');
    for (const bad of ['-1', '2.5', 'three']) {
      const w = await cli(['worker', `--read-ahead=${bad}`]);
      expect([w.code, w.stderr.trim()]).toEqual([2, expect.stringContaining(`--read-ahead must be a whole number of at least 0, not ${JSON.stringify(bad)}`)]);
    }
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const cmd of ['up', 'worker', 'submit', 'status', 'watch', 'logs', 'cancel', 'rerun', 'demo']) expect(help.stdout).toContain(`gitjobs ${cmd}`);
  });
});
