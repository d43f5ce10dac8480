/**
 * Building a worker image is running the config repository's Dockerfile:
 * anyone who can push to config writes its RUN steps. So builds run boxed
 * too — no network, memory and CPU limits, a process limit (through a
 * cgroup parent that caps every build together), and a time limit — and
 * their whole log is kept in a file.
 */
import fs from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';

export interface BuildLimits {
  memoryBytes: number;
  /** CPUs one build may use. */
  cpus: number;
  /** Processes all builds together may have at once. */
  pids: number;
  /** A build that runs longer is stopped, and fails saying so (ms). */
  timeoutMs: number;
}

export const BUILD_LIMITS: BuildLimits = { memoryBytes: 1024 * 1024 * 1024, cpus: 1, pids: 512, timeoutMs: 10 * 60_000 };

/** The cgroup every build's RUN containers are put under, its pids.max the builds' process limit. */
export const BUILD_CGROUP = 'gitjobs-build';

/**
 * Makes the builds' parent cgroup with its process limit, where the Docker
 * engine runs on this machine with the cgroupfs driver; returns the parent
 * to build under, or why there is none.
 */
export async function buildCgroup(docker: Docker, pids: number, sysfs = '/sys/fs/cgroup'): Promise<{ parent: string } | { missing: string }> {
  let info: { CgroupDriver?: string; CgroupVersion?: string };
  try {
    info = (await docker.info()) as typeof info;
  } catch (err) {
    return { missing: `the engine did not say how it manages cgroups: ${(err as Error).message}` };
  }
  if (process.env.DOCKER_HOST && !process.env.DOCKER_HOST.startsWith('unix://')) return { missing: 'the Docker engine is on another machine (DOCKER_HOST)' };
  if (info.CgroupDriver !== 'cgroupfs') return { missing: `the engine's cgroup driver is ${info.CgroupDriver ?? 'unknown'}, not cgroupfs` };
  try {
    if (info.CgroupVersion === '2') {
      const dir = path.join(sysfs, BUILD_CGROUP);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(sysfs, 'cgroup.subtree_control'), '+pids');
      fs.writeFileSync(path.join(dir, 'pids.max'), String(pids));
    } else {
      const dir = path.join(sysfs, 'pids', BUILD_CGROUP);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'pids.max'), String(pids));
    }
    return { parent: `/${BUILD_CGROUP}` };
  } catch (err) {
    return { missing: `cannot write the cgroup ${BUILD_CGROUP}: ${(err as Error).message}` };
  }
}

/** Query options of one build: boxed as described above. */
export function buildOptions(limits: BuildLimits, cgroupParent: string | undefined): Record<string, unknown> {
  const period = 100_000;
  return {
    networkmode: 'none',
    memory: limits.memoryBytes,
    memswap: limits.memoryBytes,
    cpuperiod: period,
    cpuquota: Math.round(period * limits.cpus),
    ...(cgroupParent ? { cgroupparent: cgroupParent } : {}),
  };
}

/** Where a build's log is kept: one file per image tag, the newest build's. */
export function buildLogFile(dir: string, tag: string): string {
  return path.join(dir, `${tag.replace(/[^A-Za-z0-9._-]+/g, '_')}.log`);
}

/**
 * Follows a build's progress to its end, writing every line to `logFile`;
 * resolves with the error the engine reported, if any. Aborting `signal`
 * ends the build (the engine stops it when its client goes away).
 */
export function followBuild(docker: Docker, stream: NodeJS.ReadableStream, logFile: string, signal: AbortSignal): Promise<{ error?: string; tail: string }> {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const log = fs.createWriteStream(logFile);
  let tail = '';
  const keep = (text: string) => {
    log.write(text);
    tail = (tail + text).slice(-4096);
  };
  return new Promise((resolve, reject) => {
    const aborted = () => {
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      keep(`\ngitjobs: ${String(signal.reason ?? 'build stopped')}\n`);
      log.end(() => resolve({ error: String(signal.reason ?? 'build stopped'), tail }));
    };
    if (signal.aborted) return aborted();
    signal.addEventListener('abort', aborted, { once: true });
    docker.modem.followProgress(
      stream,
      (err: Error | null, output: { error?: string }[]) => {
        signal.removeEventListener('abort', aborted);
        if (signal.aborted) return;
        const failed = err?.message ?? output.find((o) => o.error)?.error;
        log.end(() => (err && !output ? reject(err) : resolve({ ...(failed ? { error: failed } : {}), tail })));
      },
      (event: { stream?: string; error?: string; status?: string }) => keep(event.stream ?? (event.error ? `${event.error}\n` : event.status ? `${event.status}\n` : '')),
    );
  });
}
