/** Both executors on real processes and real containers. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerExecutor, programNotRun } from '../../src/adapters/docker/executor.js';
import { ProcessExecutor } from '../../src/adapters/process/executor.js';
import type { ExecRequest, Executor } from '../../src/core/ports.js';
import { DEFAULT_SETTINGS } from '../../src/core/settings.js';
import { TEMPLATE_DIR } from '../../src/adapters/builtin/forge.js';
import { rmTree, tmpdir } from '../helpers/stack.js';

const workerDir = path.join(TEMPLATE_DIR, 'config/workers/default');
const request = (image: string, argv: string[], extra: Partial<ExecRequest> = {}): ExecRequest => ({
  image,
  argv,
  timeoutMs: 20_000,
  limits: DEFAULT_SETTINGS.limits,
  labels: { 'io.gitjobs.run': 'test' },
  env: { GITJOBS_ATTEMPT: '2' },
  outputCap: 1024 * 1024,
  ...extra,
});

const cases: [string, () => Executor][] = [
  ['docker', () => new DockerExecutor({ baseImage: DEFAULT_SETTINGS.baseImage })],
  ['process', () => new ProcessExecutor()],
];

describe.each(cases)('%s executor', (kind, make) => {
  let executor: Executor;
  let image: string;
  let commit: string;
  beforeAll(async () => {
    executor = make();
    await executor.check();
    // A fresh commit id per run, so that the image build itself is exercised.
    commit = `${Date.now().toString(16)}${'0'.repeat(40)}`.slice(0, 40);
    image = await executor.prepare({ name: 'default', commit, dir: workerDir });
  });
  afterAll(async () => {
    if (executor instanceof DockerExecutor) await executor.docker.getImage(DockerExecutor.tagFor({ name: 'default', commit })).remove({ force: true }).catch(() => undefined);
  });

  it('runs the N-Queens solver from the worker folder', async () => {
    const r = await executor.run(request(image, ['node', 'nqueens.js', '8', '0']));
    expect(r).toMatchObject({ exitCode: 0, stdout: '4\n', timedOut: false, truncated: false });
  });

  it('records exit code, stdout and stderr', async () => {
    const r = await executor.run(request(image, ['sh', '-c', 'echo out; echo err >&2; exit 3']));
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toBe('out\n');
    expect(r.output).toContain('out\n');
    expect(r.output).toContain('err\n');
  });

  it('kills a task past its timeout', async () => {
    // Left alone it would sleep ten minutes: ending within one says it was killed, not waited for.
    const r = await executor.run(request(image, ['sh', '-c', 'echo begun; sleep 600'], { timeoutMs: 1000 }));
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBeNull();
    expect(r.stdout).toBe('begun\n');
    expect(r.durationMs).toBeLessThan(60_000);
  });

  it('cuts output at the cap and says so', async () => {
    const r = await executor.run(request(image, ['sh', '-c', 'yes 0123456789 | head -c 200000'], { outputCap: 10_000 }));
    expect(r.truncated).toBe(true);
    expect(r.stdout.length).toBe(10_000);
    expect(r.output).toMatch(/\[gitjobs: output cut at 10000 bytes; 190000 more bytes dropped\]/);
  });

  it('passes the attempt in the environment', async () => {
    const r = await executor.run(request(image, ['sh', '-c', 'echo "attempt $GITJOBS_ATTEMPT"']));
    expect(r.stdout).toBe('attempt 2\n');
  });

  it('reports a program that does not exist', async () => {
    const r = await executor.run(request(image, ['no-such-program-xyz']));
    expect(r.exitCode).toBe(127);
    expect(r.output).toContain('no-such-program-xyz');
  });

  it('reports a program that is not executable as a shell does: 126', async () => {
    const r = await executor.run(request(image, ['/etc/passwd']));
    expect(r.exitCode).toBe(126);
    expect(r.output).toMatch(/\/etc\/passwd.*(permission denied|EACCES)/i);
  });
});

describe('docker executor sandbox', () => {
  const docker = new DockerExecutor({ baseImage: DEFAULT_SETTINGS.baseImage });
  let image: string;
  beforeAll(async () => {
    image = await docker.prepare({ name: 'default', commit: 'sandbox'.padEnd(40, '0'), dir: workerDir });
  });

  it('has no network, runs as a non-root user, and removes its container', async () => {
    const before = (await docker.docker.listContainers({ all: true, filters: { label: ['io.gitjobs.run=sandbox'] } })).length;
    // No interface but loopback and no route: nothing outside the container can be reached.
    const r = await docker.run(request(image, ['sh', '-c', 'id -u; ls /sys/class/net; tail -n +2 /proc/net/route | wc -l'], { labels: { 'io.gitjobs.run': 'sandbox' } }));
    expect(r.stdout.trim().split('\n')).toEqual(['1000', 'lo', '0']);
    const after = await docker.docker.listContainers({ all: true, filters: { label: ['io.gitjobs.run=sandbox'] } });
    expect(after.length).toBe(before);
  });

  it('applies memory, CPU and pids limits', async () => {
    const cpu = 'set -- $(cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"); echo $(( $1 * 1000 / $2 ))';
    const r = await docker.run(request(image, ['sh', '-c', `cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; ${cpu}`], { limits: { memoryBytes: 64 * 1024 * 1024, nanoCpus: 500_000_000, pids: 32 } }));
    expect(r.stdout.trim().split('\n')).toEqual([String(64 * 1024 * 1024), '32', '500']);
  });

  it('names the worker and commit when a Dockerfile does not build', async () => {
    const dir = tmpdir('badworker');
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN exit 7\n');
    await expect(docker.prepare({ name: 'broken', commit: 'b'.repeat(40), dir })).rejects.toThrow(/building workers\/broken at config bbbbbbb failed/);
    rmTree(dir);
  });
});

describe("the engine's start errors", () => {
  // As dockerd and runc word them (Docker 28, runc 1.1).
  const oci = (tail: string) => `failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: ${tail}: unknown`;
  it("are the task's own failure only when they name its program", () => {
    expect(programNotRun(oci('exec: "nosuch": executable file not found in $PATH'), 'nosuch')).toBe(127);
    expect(programNotRun(oci('exec: "/nosuch": stat /nosuch: no such file or directory'), '/nosuch')).toBe(127);
    expect(programNotRun(oci('exec: "/etc/passwd": permission denied'), '/etc/passwd')).toBe(126);
    // The engine's own trouble is not the task's: an executor error, retried.
    expect(programNotRun(oci('error during container init: error mounting "tmpfs" to rootfs at "/tmp": no space left on device'), 'node')).toBeUndefined();
    expect(programNotRun(oci('exec: "sh": executable file not found in $PATH'), 'node')).toBeUndefined();
    expect(programNotRun('cgroup: cannot allocate memory', 'node')).toBeUndefined();
  });
});
