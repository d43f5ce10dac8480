/**
 * What a task or a pusher may not do, against real containers, the real
 * HTTP server and real Git: each refusal is recorded and says why, and the
 * rest of the work goes on.
 */
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submit, waitForRun } from '../../src/client/submit.js';
import { runIdFor } from '../../src/core/ids.js';
import { DEFAULT_SETTINGS } from '../../src/core/settings.js';
import { rmTree, startStack, tmpdir, type Stack } from '../helpers/stack.js';

const API_TOKEN = 'api-token-that-must-not-leak-0123456789';
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ workers: 2, apiToken: API_TOKEN, webhookSecret: 'webhook-secret-that-must-not-leak-42' });
});
afterAll(async () => {
  await stack?.stop();
});

describe('the task sandbox', () => {
  it('contains network access, a fork bomb, a memory hog and writes to /, while a task beside them succeeds', async () => {
    const project = {
      project: 'hostile',
      timeout: '20s',
      limits: { memory: '128m', pids: 64 },
      tasks: [
        // No interface but loopback, and no route anywhere: nothing to reach.
        { id: 'net', run: 'ls /sys/class/net; echo routes: $(tail -n +2 /proc/net/route | wc -l) $(tail -n +2 /proc/net/ipv6_route 2>/dev/null | grep -vc " lo$")' },
        { id: 'forkbomb', run: 'bomb() { bomb | bomb & }; bomb; sleep 3; echo still standing', timeout: '8s' },
        { id: 'memhog', run: ['node', '-e', 'const a = []; for (;;) a.push(Buffer.alloc(16 * 1024 * 1024, 1));'] },
        { id: 'rootfs', run: 'echo pwned > /evil 2>&1; echo pwned > /opt/gitjobs/evil 2>&1; id -u; echo scratch > /tmp/ok && cat /tmp/ok' },
        { id: 'fine', run: 'echo all good' },
      ],
    };
    const commit = await stack.push({ 'projects/hostile.json': JSON.stringify(project) }, 'Hostile tasks', { token: API_TOKEN });
    const runId = runIdFor('projects/hostile.json', commit);
    const { run, tasks } = await stack.waitForRun(runId, 120_000);
    const t = Object.fromEntries(tasks.map((x) => [x.id, x]));
    expect(run.state).toBe('failed');
    expect(t.fine).toMatchObject({ state: 'succeeded', exitCode: 0 });
    expect(await stack.stdout(runId, 'net')).toBe('lo\nroutes: 0 0\n');
    // The fork bomb hits the pids limit (forks fail), and the machine is fine.
    expect((await stack.log(runId, 'forkbomb'))!).toMatch(/can't fork|Resource temporarily unavailable/);
    // The memory hog is killed by the memory limit (the kernel's OOM kill), not by its timeout.
    expect(t.memhog).toMatchObject({ state: 'failed', exitCode: 137, timedOut: false });
    const rootfs = (await stack.log(runId, 'rootfs'))!;
    expect(rootfs).toMatch(/Read-only file system/);
    // The output interleaves stdout and stderr as they came (busybox may write a message and its newline
    // apart, with stdout in between); stdout alone is recorded too.
    expect(await stack.stdout(runId, 'rootfs')).toBe('1000\nscratch\n');
    expect(rootfs).not.toContain('pwned');
    const { json } = await stack.result(runId);
    expect(json.tasks.find((x) => x.id === 'fine')!.state).toBe('succeeded');
  });

  it('lets a project lower the resource limits, never raise them past the operator\'s', async () => {
    // cgroup v2 or v1, whichever the machine has.
    const read = [
      'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes',
      'cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max',
      // CPU as quota over period, in thousandths of a CPU.
      'set -- $(cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"); echo $(( $1 * 1000 / $2 ))',
    ].join('; ');
    const commit = await stack.push(
      {
        'projects/lower.json': JSON.stringify({ limits: { memory: '128m', pids: 64, cpus: 0.5 }, tasks: [{ id: 'l', run: read }] }),
        'projects/raise.json': JSON.stringify({ limits: { memory: '64g', pids: 100000, cpus: 16 }, tasks: [{ id: 'r', run: read }] }),
      },
      'Limits',
      { token: API_TOKEN },
    );
    const lower = await stack.waitForRun(runIdFor('projects/lower.json', commit));
    expect((await stack.result(lower.run.id)).text).toBe(`${128 * 1024 * 1024}\n64\n500\n`);
    const raise = await stack.waitForRun(runIdFor('projects/raise.json', commit));
    expect((await stack.result(raise.run.id)).text).toBe(`${512 * 1024 * 1024}\n256\n1000\n`);
  });

  it('mounts no host path and never the Docker socket, and drops every privilege', async () => {
    const commit = await stack.push({ 'projects/inspect.json': JSON.stringify({ tasks: [{ id: 'i', run: 'sleep 3' }] }) }, 'Inspect', { token: API_TOKEN });
    const runId = runIdFor('projects/inspect.json', commit);
    const Docker = (await import('dockerode')).default;
    const docker = new Docker();
    const [c] = await (async () => {
      for (;;) {
        const list = await docker.listContainers({ filters: { label: [`io.gitjobs.run=${runId}`] } });
        if (list.length) return list;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const info = await docker.getContainer(c!.Id).inspect();
    expect(info.Mounts).toEqual([]);
    expect(info.HostConfig.Binds ?? []).toEqual([]);
    expect(info.HostConfig.NetworkMode).toBe('none');
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    expect(info.HostConfig.CapDrop).toEqual(['ALL']);
    expect(info.HostConfig.SecurityOpt).toEqual(['no-new-privileges']);
    expect(info.HostConfig.Privileged).toBe(false);
    expect(info.Config.User).toBe('1000:1000');
    expect(info.Config.Env.join('\n')).not.toMatch(/TOKEN|SECRET|PASSWORD/i);
    await stack.waitForRun(runId);
  });

  it('cuts a task that prints 50 MiB at the cap, finishes the run, and keeps memory bounded', async () => {
    const before = process.memoryUsage().rss;
    const commit = await stack.push({ 'projects/loud.json': JSON.stringify({ tasks: [{ id: 'loud', run: 'yes 0123456789abcdef | head -c 52428800; echo end' }, { id: 'quiet', run: 'echo hi' }] }) }, 'Loud', { token: API_TOKEN });
    const runId = runIdFor('projects/loud.json', commit);
    const { run, tasks } = await stack.waitForRun(runId, 120_000);
    expect(run.state).toBe('succeeded');
    const loud = tasks.find((x) => x.id === 'loud')!;
    expect(loud.outputTruncated).toBe(true);
    const log = (await stack.log(runId, 'loud'))!;
    expect(log.length).toBeLessThan(1024 * 1024 + 200);
    expect(log).toMatch(/\[gitjobs: output cut at 1048576 bytes; \d+ more bytes dropped\]\n$/);
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
  });
});

describe('hostile project files', () => {
  it('refuses each with a clear message, while a valid project in the same push still runs', async () => {
    const deepPrefix = '{"tasks": [{"id": "a", "run": ["echo", ';
    const deep = deepPrefix + '['.repeat(100) + ']'.repeat(100) + ']}]}';
    // Four levels open before the run of brackets; the 13th bracket of it is the 17th level.
    const deepColumn = deepPrefix.length + 13;
    const files = {
      'projects/escape.json': JSON.stringify({ project: '../../etc', tasks: [{ id: 'a', run: 'true' }] }),
      'projects/slash.json': JSON.stringify({ tasks: [{ id: 'a/b', run: 'true' }] }),
      'projects/huge.json': JSON.stringify({ tasks: [{ id: 'a', run: 'true' }], description: 'x'.repeat(50 * 1024 * 1024) }),
      'projects/many.json': JSON.stringify({ tasks: Array.from({ length: 100_000 }, (_, i) => ({ id: `t${i}`, run: 'true' })) }),
      'projects/deep.json': deep,
      'projects/longcmd.json': JSON.stringify({ tasks: [{ id: 'a', run: 'echo ' + 'y'.repeat(20_000) }] }),
      'projects/ok.json': JSON.stringify({ tasks: [{ id: 'a', run: 'echo still fine' }] }),
    };
    const commit = await stack.push(files, 'Hostile files', { token: API_TOKEN });
    const reason = async (name: string) => (await stack.waitForRun(runIdFor(`projects/${name}.json`, commit))).run;
    const escape = await reason('escape');
    expect(escape.state).toBe('rejected');
    expect(escape.error).toBe('projects/escape.json: $.project: must be 1 to 64 characters of A-Z a-z 0-9 . _ - (and no "..")');
    expect((await reason('slash')).error).toContain('$.tasks[0].id: must be 1 to 64 characters');
    expect((await reason('huge')).error).toMatch(/^projects\/huge\.json: \$: file is \d+ bytes; a project file may be at most 1048576 bytes$/);
    expect((await reason('many')).error).toMatch(/\$: file is \d+ bytes|\$\.tasks: more than 10000 tasks/);
    expect((await reason('deep')).error).toBe(`projects/deep.json: $: nested deeper than 16 levels (line 1, column ${deepColumn})`);
    expect((await reason('longcmd')).error).toBe('projects/longcmd.json: $.tasks[0].run: command longer than 16384 characters');
    const ok = await stack.waitForRun(runIdFor('projects/ok.json', commit));
    expect(ok.run.state).toBe('succeeded');
    expect((await stack.result(ok.run.id)).text).toBe('still fine\n');
  });

  it('refuses 100,000 tasks in a file under the size limit by the task-count rule', async () => {
    const many = JSON.stringify(Array.from({ length: 100_000 }, (_, i) => ({ cmd: 'e', id_task: i, phrase: '' })));
    expect(Buffer.byteLength(many)).toBeGreaterThan(1024 * 1024);
    const compact = JSON.stringify({ tasks: Array.from({ length: 10_001 }, (_, i) => ({ id: i, run: 'e' })) });
    expect(Buffer.byteLength(compact)).toBeLessThan(1024 * 1024);
    const commit = await stack.push({ 'projects/count.json': compact }, 'Too many', { token: API_TOKEN });
    const { run } = await stack.waitForRun(runIdFor('projects/count.json', commit));
    expect(run.error).toBe('projects/count.json: $.tasks: more than 10000 tasks');
  });
});

describe('the HTTP surface', () => {
  it('refuses pushes to the built-in host without the token', async () => {
    await expect(stack.push({ 'projects/nocreds.json': '{}' }, 'No credentials')).rejects.toThrow(/401|Authentication failed|could not read Username/);
  });

  it('gitjobs submit pushes with the token, and without it says that the server needs GITJOBS_API_TOKEN', async () => {
    const dir = tmpdir('hostile-submit');
    try {
      const file = path.join(dir, 'with-token.json');
      fs.writeFileSync(file, JSON.stringify({ tasks: [{ id: 'a', run: 'echo submitted' }] }));
      const options = { file, url: stack.running.url, repos: DEFAULT_SETTINGS.repos, branch: DEFAULT_SETTINGS.branch };
      await expect(submit(options)).rejects.toThrow(`${stack.running.url}/git/tache_a_faire.git needs credentials to push: set GITJOBS_API_TOKEN to the server's API token`);
      await expect(submit({ ...options, token: 'a-wrong-token-0123456789' })).rejects.toThrow('needs credentials to push');
      const sent = await submit({ ...options, token: API_TOKEN });
      const { view, resultText } = await waitForRun({ url: stack.running.url, run: sent.run, timeoutMs: 60_000 });
      expect(view.run.state).toBe('succeeded');
      expect(resultText).toBe('submitted\n');
    } finally {
      rmTree(dir);
    }
  });

  it('refuses to cancel without the bearer token, and with a wrong one', async () => {
    const url = `${stack.running.url}/api/runs/whatever-0000000/cancel`;
    expect((await fetch(url, { method: 'POST' })).status).toBe(401);
    expect((await fetch(url, { method: 'POST', headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    expect((await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${API_TOKEN}` } })).status).toBe(404);
  });

  it('refuses unsigned, wrongly signed and replayed webhooks', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/main', before: '0'.repeat(40), after: '1'.repeat(40), repository: { name: 'tache_a_faire' } });
    const post = (headers: Record<string, string>) => fetch(`${stack.running.url}/webhooks/gitea`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-gitea-event': 'push', ...headers } });
    expect((await post({ 'x-gitea-delivery': 'a' })).status).toBe(401);
    expect((await post({ 'x-gitea-delivery': 'b', 'x-gitea-signature': '00'.repeat(32) })).status).toBe(401);
    // Signed right, the same delivery twice: the second is refused as a replay.
    const signature = createHmac('sha256', 'webhook-secret-that-must-not-leak-42').update(body).digest('hex');
    expect((await post({ 'x-gitea-delivery': 'c', 'x-gitea-signature': signature })).status).toBe(202);
    const again = await post({ 'x-gitea-delivery': 'c', 'x-gitea-signature': signature });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ duplicate: true, delivery: 'c' });
  });
});

describe('secrets', () => {
  it('appear nowhere in tracking, done or the logs, even when a task prints them', async () => {
    const commit = await stack.push(
      {
        'projects/leak.json': JSON.stringify({ tasks: [{ id: 'leak', run: `echo token=${API_TOKEN}; echo secret=webhook-secret-that-must-not-leak-42 >&2` }] }),
        // Rejected, and its rule (naming the field) is logged: the log line carries the token, masked.
        'projects/leak-field.json': JSON.stringify({ tasks: [{ id: 'x', run: 'true', [API_TOKEN]: 1 }] }),
      },
      'Try to leak',
      { token: API_TOKEN },
    );
    const runId = runIdFor('projects/leak.json', commit);
    await stack.waitForRun(runId);
    expect((await stack.waitForRun(runIdFor('projects/leak-field.json', commit))).run.error).toBe('projects/leak-field.json: $.tasks[0]: unknown field "***"');
    expect(stack.logs()).toContain('unknown field \\"***\\"');
    const out = tmpdir('grep');
    for (const repo of ['tache_suivi', 'tache_termine']) {
      const dir = path.join(out, repo);
      execFileSync('git', ['clone', '-q', path.join(stack.home, 'repos', `${repo}.git`), dir]);
      const everything = execFileSync('git', ['log', '-p', '--all', '--format=%B'], { cwd: dir, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
      expect(everything).toContain('token=***');
      for (const secret of [API_TOKEN, 'webhook-secret-that-must-not-leak-42']) expect(everything, repo).not.toContain(secret);
    }
    for (const secret of [API_TOKEN, 'webhook-secret-that-must-not-leak-42']) expect(stack.logs()).not.toContain(secret);
    rmTree(out);
  });

  it('are masked in live output too, even when a chunk ends inside one', async () => {
    const [first, second] = [API_TOKEN.slice(0, API_TOKEN.length / 2), API_TOKEN.slice(API_TOKEN.length / 2)];
    // The token goes out in two halves, half a second apart: two chunks on the OUTPUT exchange.
    const script = `sleep 1; printf 'token=${first}'; sleep 0.6; printf '${second} and more\\n'; sleep 0.6; echo done`;
    const commit = await stack.push({ 'projects/live.json': JSON.stringify({ tasks: [{ id: 'live', run: script }] }) }, 'Leak it live', { token: API_TOKEN });
    const runId = runIdFor('projects/live.json', commit);
    // Watch from the moment tracking knows the task, while it runs.
    for (let i = 0; i < 100 && !(await stack.readRun(runId)); i++) await new Promise((r) => setTimeout(r, 50));
    const res = await fetch(`${stack.running.url}/api/runs/${runId}/tasks/live/log`);
    const reader = res.body!.getReader();
    let stream = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      stream += Buffer.from(value).toString('utf8');
    }
    const output = [...stream.matchAll(/^event: (output|log)\ndata: (.*)$/gm)].map((m) => JSON.parse(m[2]!) as string).join('');
    expect(stream).toContain('event: output');
    expect(output).toContain('token=*** and more');
    expect(output).not.toContain(API_TOKEN);
    expect(output).not.toContain(first + second);
  });
});
