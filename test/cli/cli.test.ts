/**
 * The `gitjobs` command as a user runs it: `up` in one process, `submit
 * --wait` and `status` in others, the git CLI in between.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmqpQueue } from '../../src/adapters/amqp/queue.js';
import { prefixedQueues } from '../../src/core/settings.js';
import { AMQP_URL, git, gitAsync, tmpdir } from '../helpers/stack.js';

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

beforeAll(async () => {
  if (!fs.existsSync(CLI)) throw new Error('run `npm run build` first (npm test does)');
  // `up` without workers, and a separate `gitjobs worker` process, as on a second machine.
  server = spawn(process.execPath, [CLI, 'up', '--home', home, '--port', '0', '--workers', '0', '--log-level', 'warn'], { env: { ...process.env, GITJOBS_QUEUE_PREFIX: prefix } });
  server.stderr!.on('data', (d) => (serverOut += d));
  await new Promise<void>((resolve, reject) => {
    server.stdout!.on('data', (d) => {
      serverOut += d;
      const m = /gitjobs is up at (http:\/\/\S+)/.exec(serverOut);
      if (m && serverOut.includes('Ctrl-C stops')) {
        url = m[1]!;
        resolve();
      }
    });
    server.on('exit', (code) => reject(new Error(`gitjobs up exited ${code}: ${serverOut}`)));
  });
  worker = spawn(process.execPath, [CLI, 'worker', '--workers', '2', '--cache', path.join(work, '.worker-cache'), '--log-level', 'warn'], { env: { ...process.env, GITJOBS_QUEUE_PREFIX: prefix } });
  let workerOut = '';
  await new Promise<void>((resolve, reject) => {
    worker.stdout!.on('data', (d) => {
      workerOut += d;
      if (workerOut.includes('taking tasks from')) resolve();
    });
    worker.on('exit', (code) => reject(new Error(`gitjobs worker exited ${code}`)));
  });
});

afterAll(async () => {
  for (const p of [server, worker]) if (p && p.exitCode === null) p.kill('SIGKILL');
  const q = await AmqpQueue.connect({ url: AMQP_URL, queues: prefixedQueues(prefix) });
  await q.deleteQueues();
  await q.close();
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(work, { recursive: true, force: true });
});

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
    const r = await cli(['submit', 'hello.json', '--url', url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('projects/hello.json already has this content');
    expect(r.stderr).toContain('--as NAME');
  });

  it('rerun runs a finished run again as RUN.r1, follows it with --wait, and counts re-runs from the first run', async () => {
    const listing = (await cli(['status', '--url', url])).stdout;
    const hello = /^(hello-[0-9a-f]{7})\s/m.exec(listing)![1]!;
    const failed = /^(fail-[0-9a-f]{7})\s/m.exec(listing)![1]!;
    const r = await cli(['rerun', hello, '--wait', '--url', url]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`run ${hello} re-run as ${hello}.r1 (2 tasks queued)\n`);
    expect(r.stdout.endsWith('result (succeeded):\nhello\nx\n')).toBe(true);
    // A re-run of a re-run is numbered from the first run.
    expect((await cli(['rerun', `${hello}.r1`, '--url', url])).stdout).toBe(`run ${hello}.r1 re-run as ${hello}.r2 (2 tasks queued)\n`);
    expect((await cli(['status', `${hello}.r1`, '--url', url])).stdout).toContain(`re-run of ${hello}\n`);
    const tracking = path.join(home, 'repos', 'tache_suivi.git');
    const queued = git(tracking, 'log', '--format=%s|%(trailers:key=Rerun-Of,valueonly)', 'main').split('\n').filter((l) => l.startsWith(`${hello}.r1: `));
    expect(queued).toContain(`${hello}.r1: queued (2 tasks from projects/hello.json, re-run of ${hello})|${hello}`);
    // The same inputs fail the same way: --wait says so.
    const again = await cli(['rerun', failed, '--wait', '--url', url]);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain('task boom failed: exit 3');
    const unknown = await cli(['rerun', 'nope-1234567', '--url', url]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('gitjobs rerun: no run nope-1234567 in tache_suivi\n');
  });

  it('rerun refuses a run that has not finished', async () => {
    fs.writeFileSync(path.join(work, 'slow.json'), JSON.stringify({ tasks: [{ id: 's', run: 'sleep 2' }] }));
    const submitted = await cli(['submit', 'slow.json', '--url', url]);
    const run = /run (slow-[0-9a-f]{7})/.exec(submitted.stdout)![1]!;
    const r = await cli(['rerun', run, '--url', url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^gitjobs rerun: run ${run} is still (queued|running); it can be re-run once it has finished \\(or cancel it first\\)\n$`));
  });

  it('a plain git push starts a run too, and status reads it from tracking', async () => {
    const dir = tmpdir('cli-clone');
    await gitAsync(dir, 'clone', '-q', `${url}/git/tache_a_faire.git`, '.');
    fs.copyFileSync(path.join(dir, 'examples/prototype.json'), path.join(dir, 'projects/prototype.json'));
    git(dir, 'add', '-A');
    git(dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'prototype');
    await gitAsync(dir, 'push', '-q', 'origin', 'main');
    fs.rmSync(dir, { recursive: true });
    let listing = '';
    for (let i = 0; i < 100 && !/prototype-\S+\s+succeeded\s+3\/3/.test(listing); i++) {
      await new Promise((r) => setTimeout(r, 200));
      listing = (await cli(['status', '--url', url])).stdout;
    }
    expect(listing).toMatch(/^RUN\s+STATE\s+DONE\s+FAILED\s+FILE\s+CREATED$/m);
    expect(listing).toMatch(/hello-\S+\s+succeeded\s+2\/2\s+0\s+projects\/hello\.json/);
    expect(listing).toMatch(/prototype-\S+\s+succeeded\s+3\/3\s+0\s+projects\/prototype\.json/);
    const runId = /(prototype-[0-9a-f]{7})/.exec(listing)![1]!;
    const one = await cli(['status', runId, '--url', url]);
    expect(one.stdout).toMatch(new RegExp(`^run ${runId}  succeeded  3/3 done`));
    expect(one.stdout).toMatch(/^0\s+succeeded\s+1\/1\s+0\s+\d+\.\d\ds\s+\S+$/m);
  });

  it('worker and up stop cleanly on SIGTERM', async () => {
    for (const p of [worker, server]) {
      const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
      p.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
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
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const cmd of ['up', 'worker', 'submit', 'status', 'watch', 'logs', 'cancel', 'rerun', 'demo']) expect(help.stdout).toContain(`gitjobs ${cmd}`);
  });
});
