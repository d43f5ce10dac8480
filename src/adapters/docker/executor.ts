/**
 * The Executor port over Docker (dockerode): one container per task attempt,
 * built from the worker's Dockerfile in the config repository.
 */
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { ServiceUnavailableError } from '../../core/errors.js';
import type { ExecRequest, ExecResult, Executor, WorkerSource } from '../../core/ports.js';
import { OutputCapture } from '../output-capture.js';
import { processAlive } from '../process/alive.js';

export interface DockerExecutorOptions {
  /** Image the worker Dockerfiles start FROM, passed as build argument BASE_IMAGE. */
  baseImage: string;
  docker?: Docker;
}

/** Label put on every task container, so that leftovers can be found. */
export const TASK_LABEL = 'io.gitjobs.task';
/** Tasks run as this unprivileged user (the base image names it `task`). */
export const TASK_USER = '1000:1000';
const TMP_SIZE = '64m';

export class DockerExecutor implements Executor {
  readonly kind = 'docker';
  readonly docker: Docker;
  private readonly building = new Map<string, Promise<string>>();

  constructor(private readonly options: DockerExecutorOptions) {
    this.docker = options.docker ?? new Docker();
  }

  async check(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (err) {
      throw new ServiceUnavailableError(
        'Docker',
        (err as Error).message,
        'Start the engine with `dockerd --bridge=none --iptables=false &` (or `bash scripts/setup.sh`), or use `--executor process` (unsandboxed).',
      );
    }
    try {
      await this.docker.getImage(this.options.baseImage).inspect();
    } catch {
      // Any other base image is pulled by the first build, where a registry is reachable.
      if (!this.options.baseImage.startsWith('gitjobs-base')) return;
      throw new ServiceUnavailableError(
        `Docker base image ${this.options.baseImage}`,
        'the image is not there',
        'Build it offline with `bash docker/base/build.sh` (or `bash scripts/setup.sh`).',
      );
    }
  }

  static tagFor(source: Pick<WorkerSource, 'name' | 'commit'>): string {
    return `gitjobs-worker-${source.name.toLowerCase()}:${source.commit.slice(0, 12)}`;
  }

  /** The image for a worker at a config commit: built once, then found by its tag. */
  prepare(source: WorkerSource): Promise<string> {
    const tag = DockerExecutor.tagFor(source);
    let pending = this.building.get(tag);
    if (!pending) {
      pending = this.findOrBuild(tag, source);
      this.building.set(tag, pending);
      pending.catch(() => this.building.delete(tag));
    }
    return pending;
  }

  private async findOrBuild(tag: string, source: WorkerSource): Promise<string> {
    try {
      return (await this.docker.getImage(tag).inspect()).Id;
    } catch {
      /* not built yet */
    }
    if (!fs.existsSync(path.join(source.dir, 'Dockerfile'))) {
      throw new Error(`config repository has no workers/${source.name}/Dockerfile at ${source.commit.slice(0, 7)}`);
    }
    const stream = await this.docker.buildImage(
      { context: source.dir, src: listFiles(source.dir) },
      { t: tag, buildargs: { BASE_IMAGE: this.options.baseImage }, rm: true, forcerm: true, labels: { 'io.gitjobs.worker': source.name, 'io.gitjobs.config-commit': source.commit } },
    );
    const output: { error?: string; stream?: string }[] = await new Promise((resolve, reject) =>
      this.docker.modem.followProgress(stream, (err: Error | null, res: { error?: string }[]) => (err ? reject(err) : resolve(res))),
    );
    const failed = output.find((o) => o.error);
    if (failed) {
      const log = output.map((o) => o.stream ?? '').join('').trim().split('\n').slice(-10).join('\n');
      throw new Error(`building workers/${source.name} at config ${source.commit.slice(0, 7)} failed: ${failed.error}\n${log}`);
    }
    return (await this.docker.getImage(tag).inspect()).Id;
  }

  /** Task containers of this host whose worker process is gone. */
  async reapOrphans(host: string): Promise<number> {
    const containers = await this.docker.listContainers({ all: true, filters: { label: [`${TASK_LABEL}=true`, `io.gitjobs.worker-host=${host}`] } });
    let reaped = 0;
    for (const c of containers) {
      const pid = Number(c.Labels['io.gitjobs.worker-pid']);
      if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) continue;
      await this.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
      reaped++;
    }
    return reaped;
  }

  async run(request: ExecRequest): Promise<ExecResult> {
    const started = Date.now();
    const container = await this.docker.createContainer({
      Image: request.image,
      Cmd: request.argv,
      Env: [`HOME=/tmp`, ...Object.entries(request.env).map(([k, v]) => `${k}=${v}`)],
      // Never root, whatever the worker's Dockerfile says.
      User: TASK_USER,
      Labels: { [TASK_LABEL]: 'true', ...request.labels },
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      NetworkDisabled: true,
      // The sandbox: no network, read-only root with a small /tmp, no capabilities, no privilege gain,
      // memory, CPU and process limits, and no host path or Docker socket mounted.
      HostConfig: {
        NetworkMode: 'none',
        ReadonlyRootfs: true,
        Tmpfs: { '/tmp': `rw,nosuid,nodev,size=${TMP_SIZE}` },
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        Memory: request.limits.memoryBytes,
        MemorySwap: request.limits.memoryBytes,
        NanoCpus: request.limits.nanoCpus,
        PidsLimit: request.limits.pids,
        Binds: [],
        Mounts: [],
        AutoRemove: false,
      },
    });
    const capture = new OutputCapture(request.outputCap, request.onOutput);
    let timedOut = false;
    try {
      const stream = await container.attach({ stream: true, stdout: true, stderr: true });
      const ended = new Promise<void>((resolve) => {
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', () => resolve());
      });
      this.docker.modem.demuxStream(stream, capture.stdout, capture.stderr);
      try {
        await container.start();
      } catch (err) {
        // The task's own command could not start (no such program, not executable): the task fails like a shell's 127.
        const reason = String((err as { json?: { message?: string } }).json?.message ?? (err as Error).message).trim();
        const out = capture.result();
        return { exitCode: 127, stdout: out.stdout, output: `${out.output}gitjobs: the container could not start ${JSON.stringify(request.argv[0])}: ${reason}\n`, truncated: out.truncated, durationMs: Date.now() - started, timedOut: false };
      }
      const timer = setTimeout(() => {
        timedOut = true;
        container.kill().catch(() => undefined);
      }, request.timeoutMs);
      let aborted = false;
      const abort = () => {
        aborted = true;
        container.kill().catch(() => undefined);
      };
      if (request.signal?.aborted) abort();
      request.signal?.addEventListener('abort', abort);
      let exitCode: number | null;
      try {
        exitCode = (await container.wait()).StatusCode;
      } finally {
        clearTimeout(timer);
        request.signal?.removeEventListener('abort', abort);
      }
      // The attach stream can trail the exit by a moment; do not wait forever.
      await Promise.race([ended, new Promise((r) => setTimeout(r, 2000))]);
      const out = capture.result();
      return { exitCode: timedOut || aborted ? null : exitCode, ...out, durationMs: Date.now() - started, timedOut, ...(aborted ? { aborted } : {}) };
    } finally {
      await container.remove({ force: true }).catch(() => undefined);
    }
  }
}


function listFiles(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(full, base));
    else out.push(path.relative(base, full));
  }
  return out;
}
