/**
 * `gitjobs up` as a user starts it, as a process of its own: what it says
 * when it listens beyond loopback without a token, and how much memory a
 * decompression bomb (a 300 MB file that is a 0.3 MB push) costs it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmqpQueue } from '../../src/adapters/amqp/queue.js';
import { runIdFor } from '../../src/core/ids.js';
import { prefixedQueues } from '../../src/core/settings.js';
import { gitjobs, readRun, waitFor, type Proc } from '../helpers/processes.js';
import { AMQP_URL, git, gitAsync, rmTree, tmpdir } from '../helpers/stack.js';

const prefix = `secup-${process.pid}`;
const home = tmpdir('secup');
let up: Proc & { match: RegExpExecArray };
let base: string;

beforeAll(async () => {
  up = await gitjobs(['up', '--home', home, '--port', '0', '--workers', '0', '--host', '0.0.0.0'], { GITJOBS_QUEUE_PREFIX: prefix }, /gitjobs is up at (http:\/\/\S+)[\s\S]*Ctrl-C stops/);
  base = up.match[1]!.replace('0.0.0.0', '127.0.0.1');
});
afterAll(async () => {
  if (up && up.child.exitCode === null) {
    up.child.kill('SIGTERM');
    await up.exited;
  }
  const q = await AmqpQueue.connect({ url: AMQP_URL, queues: prefixedQueues(prefix) });
  await q.deleteQueues();
  await q.close();
  rmTree(home);
});

/** The most memory the `up` process has held so far (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  return Number(kb) * 1024;
}

describe('up beyond loopback without a token', () => {
  it('says at start that other hosts cannot push or change anything, and how to let them', () => {
    expect(up.output()).toContain('listening on 0.0.0.0 without GITJOBS_API_TOKEN: other hosts can read runs but cannot push or change anything; set GITJOBS_API_TOKEN to let them');
  });
});

describe('a decompression bomb', () => {
  it('is refused by its size before it is read, its commit is shown cut, and up stays under 400 MB', async () => {
    const dir = tmpdir('bomb');
    try {
      await gitAsync(dir, 'clone', '-q', `${base}/git/tache_a_faire.git`, '.');
      fs.mkdirSync(path.join(dir, 'projects'), { recursive: true });
      // 300 MB of spaces: a few hundred kilobytes once Git has compressed them.
      const fd = fs.openSync(path.join(dir, 'projects/bomb.json'), 'w');
      const block = Buffer.alloc(1024 * 1024, 0x20);
      for (let i = 0; i < 300; i++) fs.writeSync(fd, block);
      fs.closeSync(fd);
      git(dir, 'add', '-A');
      git(dir, 'commit', '-qm', 'A bomb');
      await gitAsync(dir, 'push', '-q', 'origin', 'main');
      const sha = git(dir, 'rev-parse', 'HEAD').trim();
      const runId = runIdFor('projects/bomb.json', sha);
      const view = await waitFor('the bomb recorded', () => readRun(home, runId), 60_000);
      expect(view.run.state).toBe('rejected');
      expect(view.run.error).toBe(`projects/bomb.json: $: file is ${300 * 1024 * 1024} bytes; a project file may be at most ${1024 * 1024} bytes`);
      const shown = await fetch(`${base}/git/tache_a_faire.git/commit/${sha}`);
      expect(shown.status).toBe(200);
      const text = await shown.text();
      expect(text.length).toBeLessThan(1024 * 1024 + 100);
      expect(text).toContain('[cut at');
      if (process.env.GITJOBS_TEST_PRINT) process.stdout.write(`peak RSS of up: ${Math.round(peakRss(up.child.pid!) / 1048576)} MB\n`);
      expect(peakRss(up.child.pid!)).toBeLessThan(400 * 1024 * 1024);
    } finally {
      rmTree(dir);
    }
  });
});

describe('up as it starts by default', () => {
  it('listens on 127.0.0.1 only, and writes its webhook secret with mode 600', async () => {
    const ownHome = tmpdir('secup-default');
    const ownPrefix = `${prefix}-default`;
    const p = await gitjobs(['up', '--home', ownHome, '--port', '0', '--workers', '0'], { GITJOBS_QUEUE_PREFIX: ownPrefix }, /gitjobs is up at (http:\/\/\S+)[\s\S]*Ctrl-C stops/);
    try {
      const url = new URL(p.match[1]!);
      expect(url.hostname).toBe('127.0.0.1');
      // The kernel's own table of listening sockets: this port, on 127.0.0.1 (0100007F) and nowhere else.
      const port = Number(url.port).toString(16).toUpperCase().padStart(4, '0');
      const listening = [fs.readFileSync('/proc/net/tcp', 'utf8'), fs.readFileSync('/proc/net/tcp6', 'utf8')]
        .join('\n')
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f[1]?.endsWith(`:${port}`) && f[3] === '0A')
        .map((f) => f[1]);
      expect(listening).toEqual([`0100007F:${port}`]);
      expect(p.output()).not.toContain('without GITJOBS_API_TOKEN');
      const secret = fs.statSync(path.join(ownHome, 'webhook-secret'));
      expect(secret.mode & 0o777).toBe(0o600);
      expect(fs.readFileSync(path.join(ownHome, 'webhook-secret'), 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
      const q = await AmqpQueue.connect({ url: AMQP_URL, queues: prefixedQueues(ownPrefix) });
      await q.deleteQueues();
      await q.close();
      rmTree(ownHome);
    }
  });
});

describe('the AMQP password', () => {
  it('is masked in what up commits and logs, as its other secrets are', async () => {
    // A broker user of this test's own, with a password long enough to be a secret; removed afterwards.
    const user = `gitjobs-test-${process.pid}`;
    const password = `amqp-password-${process.pid}-0123456789`;
    execFileSync('rabbitmqctl', ['add_user', user, password], { stdio: 'ignore' });
    const ownHome = tmpdir('secup-amqp');
    const ownPrefix = `${prefix}-amqp`;
    const amqpUrl = `amqp://${user}:${password}@127.0.0.1:5672`;
    let p: (Proc & { match: RegExpExecArray }) | undefined;
    try {
      execFileSync('rabbitmqctl', ['set_permissions', '-p', '/', user, '.*', '.*', '.*'], { stdio: 'ignore' });
      p = await gitjobs(['up', '--home', ownHome, '--port', '0', '--workers', '1', '--executor', 'process'], { GITJOBS_QUEUE_PREFIX: ownPrefix, GITJOBS_AMQP_URL: amqpUrl }, /gitjobs is up at (http:\/\/\S+)[\s\S]*Ctrl-C stops/);
      const base = p.match[1]!;
      const dir = tmpdir('secup-amqp-push');
      await gitAsync(dir, 'clone', '-q', `${base}/git/tache_a_faire.git`, '.');
      fs.mkdirSync(path.join(dir, 'projects'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'projects/print.json'), JSON.stringify({ tasks: [{ id: 'p', run: `echo password=${password}` }] }));
      // Rejected, naming the field: the log line carries the password, masked.
      fs.writeFileSync(path.join(dir, 'projects/field.json'), JSON.stringify({ tasks: [{ id: 'x', run: 'true', [password]: 1 }] }));
      git(dir, 'add', '-A');
      git(dir, 'commit', '-qm', 'print it');
      await gitAsync(dir, 'push', '-q', 'origin', 'main');
      const sha = git(dir, 'rev-parse', 'HEAD').trim();
      rmTree(dir);
      const view = await waitFor('the run finished', async () => {
        const v = await readRun(ownHome, runIdFor('projects/print.json', sha));
        return v?.run.doneCommit ? v : undefined;
      });
      expect(view.run.state).toBe('succeeded');
      expect(await waitFor('the field rejected', async () => (await readRun(ownHome, runIdFor('projects/field.json', sha)))?.run.error)).toBe('projects/field.json: $.tasks[0]: unknown field "***"');
      const everything = execFileSync('git', ['--git-dir', path.join(ownHome, 'repos', 'tache_suivi.git'), 'log', '-p', '--format=%B', 'main'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      expect(everything).toContain('password=***');
      expect(everything).not.toContain(password);
      await waitFor('the rejection logged', async () => p!.output().includes('project rejected'));
      expect(p.output()).toContain('unknown field \\"***\\"');
      expect(p.output()).not.toContain(password);
    } finally {
      if (p && p.child.exitCode === null) {
        p.child.kill('SIGTERM');
        await p.exited;
      }
      const q = await AmqpQueue.connect({ url: AMQP_URL, queues: prefixedQueues(ownPrefix) });
      await q.deleteQueues();
      await q.close();
      execFileSync('rabbitmqctl', ['delete_user', user], { stdio: 'ignore' });
      rmTree(ownHome);
    }
  });
});

