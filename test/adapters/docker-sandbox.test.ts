/**
 * What a worker's Dockerfile can do to the machine, with real Docker: the
 * volumes it declares, and its build steps (which run whatever someone
 * pushed to config).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerExecutor } from '../../src/adapters/docker/executor.js';
import type { ExecRequest } from '../../src/core/ports.js';
import { DEFAULT_SETTINGS } from '../../src/core/settings.js';
import { rmTree, tmpdir } from '../helpers/stack.js';

const logDir = tmpdir('build-logs');
const limits = { memoryBytes: 256 * 1024 * 1024, cpus: 0.5, pids: 64, timeoutMs: 4000 };
const docker = new DockerExecutor({ baseImage: DEFAULT_SETTINGS.baseImage, buildLimits: limits, buildLogDir: logDir });
const dirs: string[] = [];
const stamp = Date.now().toString(16);

/** A worker folder with this Dockerfile body (after FROM the base image). */
function worker(body: string): string {
  const dir = tmpdir('sandbox-worker');
  dirs.push(dir);
  fs.writeFileSync(path.join(dir, 'Dockerfile'), `ARG BASE_IMAGE\nFROM \${BASE_IMAGE}\n${body}\n`);
  return dir;
}
const commit = (n: number) => `${stamp}${n}`.padEnd(40, '0');
const request = (image: string, script: string): ExecRequest => ({ image, argv: ['sh', '-c', script], timeoutMs: 30_000, limits: DEFAULT_SETTINGS.limits, labels: { 'io.gitjobs.run': 'sandbox-test' }, env: {}, outputCap: 1024 * 1024 });

beforeAll(async () => {
  await docker.check();
});
afterAll(() => {
  for (const d of [...dirs, logDir]) rmTree(d);
});

describe('volumes an image declares', () => {
  it('are size-capped tmpfs in the task container, and no volume is left behind', async () => {
    const image = await docker.prepare({ name: 'volumes', commit: commit(1), dir: worker('VOLUME /data\nVOLUME ["/var/cache/app"]') });
    const before = (await docker.docker.listVolumes()).Volumes?.length ?? 0;
    const r = await docker.run(request(image, 'grep -E " /data | /var/cache/app " /proc/mounts | cut -d" " -f2,3; dd if=/dev/zero of=/data/big bs=1M count=150 2>&1 | tail -1; du -m /data/big | cut -f1'));
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 2).sort()).toEqual(['/data tmpfs', '/var/cache/app tmpfs']);
    expect(Number(lines.at(-1))).toBeLessThanOrEqual(64);
    expect((await docker.docker.listVolumes()).Volumes?.length ?? 0).toBe(before);
  });
});

describe('image builds', () => {
  it('run without network, under memory, CPU and process limits', async () => {
    const facts = [
      'ls /sys/class/net | tr "\\n" " "; echo',
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max',
      'cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d" " -f1 /sys/fs/cgroup/cpu.max',
      'grep -c gitjobs-build /proc/self/cgroup',
    ].join('; ');
    const image = await docker.prepare({ name: 'facts', commit: commit(2), dir: worker(`RUN (${facts}) > /build-facts`) });
    const r = await docker.run(request(image, 'cat /build-facts'));
    const [net, memory, cpu, cgroups] = r.stdout.trim().split('\n');
    expect(net!.trim()).toBe('lo');
    expect(Number(memory)).toBe(limits.memoryBytes);
    expect(Number(cpu)).toBe(50_000);
    expect(Number(cgroups)).toBeGreaterThan(0);
    // Its log is kept.
    expect(fs.readdirSync(logDir).some((f) => fs.readFileSync(path.join(logDir, f), 'utf8').includes('build-facts'))).toBe(true);
  });

  it('cannot fork without bound: the build fails, naming the worker', async () => {
    const bomb = worker('RUN for i in $(seq 1 500); do sleep 30 & done; echo forked-them-$((1 + 1))');
    const err = await docker.prepare({ name: 'forks', commit: commit(3), dir: bomb }).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/building workers\/forks at config .* failed/);
    expect(err?.message).toMatch(/can't fork|Resource temporarily unavailable/);
    expect(err?.message).not.toContain('forked-them-2');
  });

  it('that run past their time limit are stopped, say so, and keep their log', async () => {
    const started = Date.now();
    const err = await docker.prepare({ name: 'slow', commit: commit(4), dir: worker('RUN echo building slowly; sleep 120') }).then(() => undefined, (e: Error) => e);
    expect(Date.now() - started).toBeLessThan(limits.timeoutMs + 5000);
    expect(err?.message).toContain('the build took longer than 4 s and was stopped');
    const file = /whole build log: (\S+)\)/.exec(err!.message)![1]!;
    expect(fs.readFileSync(file, 'utf8')).toContain('building slowly');
    // Its build container went with it.
    await new Promise((r) => setTimeout(r, 1000));
    const left = await docker.docker.listContainers({ all: true });
    expect(left.filter((c) => c.Command.includes('building slowly'))).toEqual([]);
  });
});

describe('what the Dockerfile says about users and disks', () => {
  it('a task runs as uid 1000 even when the image says USER root, with a 64 MiB /tmp and a read-only root', async () => {
    const image = await docker.prepare({ name: 'rootish', commit: commit(5), dir: worker('USER root') });
    const r = await docker.run(request(image, 'id -u; id -g; dd if=/dev/zero of=/tmp/big bs=1M count=100 2>/dev/null; du -m /tmp/big | cut -f1; touch /evil 2>&1 || true'));
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 2)).toEqual(['1000', '1000']);
    expect(Number(lines[2])).toBeLessThanOrEqual(64);
    expect(Number(lines[2])).toBeGreaterThan(60);
    expect(r.output).toMatch(/Read-only file system/);
  });
});

describe('what a crashed worker leaves', () => {
  it('its /out and /in volumes are removed at the next start; a live worker\'s are not', async () => {
    const host = `sandbox-host-${stamp}`;
    const labels = (pid: number) => ({ 'io.gitjobs.task': 'true', 'io.gitjobs.files': 'true', 'io.gitjobs.worker-host': host, 'io.gitjobs.worker-pid': String(pid) });
    const [dead, alive] = [`gitjobs-out-dead-${stamp}`, `gitjobs-out-alive-${stamp}`];
    const volume = (name: string, pid: number) => docker.docker.createVolume({ Name: name, Driver: 'local', DriverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' }, Labels: labels(pid) });
    // A pid that is not running (far above the kernel's largest), and this process's own.
    await volume(dead, 2 ** 30);
    await volume(alive, process.pid);
    try {
      await docker.reapOrphans(host);
      const left = ((await docker.docker.listVolumes({ filters: { label: [`io.gitjobs.worker-host=${host}`] } })).Volumes ?? []).map((v) => v.Name);
      expect(left).toEqual([alive]);
    } finally {
      for (const v of [dead, alive]) await docker.docker.getVolume(v).remove().catch(() => undefined);
    }
  });
});
