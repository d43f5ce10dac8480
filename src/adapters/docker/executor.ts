/**
 * The Executor port over Docker (dockerode): one container per task attempt,
 * built from the worker's Dockerfile in the config repository.
 */
import Docker from 'dockerode';
import { ServiceUnavailableError } from '../../core/errors.js';
import type { ExecRequest, ExecResult, Executor, WorkerSource } from '../../core/ports.js';
import { OutputCapture } from '../output-capture.js';
import { processAlive } from '../process/alive.js';
import { tagFor, WorkerImages, type WorkerImagesOptions } from './images.js';
import { FileMounts, orphanVolumes } from './file-mounts.js';
import { engineReason, programNotRun } from './start-errors.js';

export { KEEP_IMAGES } from './images.js';
export { programNotRun } from './start-errors.js';

/** The base image, and how worker images are built and pruned (images.ts). */
export interface DockerExecutorOptions extends WorkerImagesOptions {
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
  private readonly images: WorkerImages;
  /** Mount points each image declares (VOLUME), by image. */
  private readonly volumes = new Map<string, Promise<string[]>>();

  constructor(private readonly options: DockerExecutorOptions) {
    this.docker = options.docker ?? new Docker();
    this.images = new WorkerImages(this.docker, options);
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

  /** Worker images are named by the worker folder's tree id and the base image's id: images.ts. */
  static tagFor = tagFor;

  /** The image for a worker at a config commit: built once, then found by its tag (images.ts). */
  prepare(source: WorkerSource): Promise<string> {
    return this.images.prepare(source);
  }

  baseImage(): Promise<string | undefined> {
    return this.images.baseImage();
  }

  /** The mount points an image declares with VOLUME: each gets a small tmpfs, so that no task writes to the host's disk. */
  private declaredVolumes(image: string): Promise<string[]> {
    let pending = this.volumes.get(image);
    if (!pending) {
      pending = this.docker
        .getImage(image)
        .inspect()
        .then((i) => Object.keys(i.Config?.Volumes ?? {}));
      this.volumes.set(image, pending);
      pending.catch(() => this.volumes.delete(image));
    }
    return pending;
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
    // The /out and /in volumes of their tasks (file-mounts.ts), once no container holds them.
    await orphanVolumes(this.docker, host, processAlive).catch(() => undefined);
    return reaped;
  }

  /**
   * A task with files runs beside a keeper holding its /out and /in
   * (file-mounts.ts): its files are read back from there once it exits.
   */
  async run(request: ExecRequest): Promise<ExecResult> {
    if (!request.out && !request.inputs) return this.runTask(request, []);
    // Could it not be set up, the attempt fails with the reason (attempt.ts), without running.
    const mounts = await FileMounts.open(this.docker, request, { label: TASK_LABEL, user: TASK_USER });
    try {
      const result = await this.runTask(request, mounts.mounts);
      return await mounts.collect(result);
    } finally {
      await mounts.close();
    }
  }

  private async runTask(request: ExecRequest, mounts: Docker.MountSettings[]): Promise<ExecResult> {
    const started = Date.now();
    const tmpfs: Record<string, string> = { '/tmp': `rw,nosuid,nodev,size=${TMP_SIZE}` };
    for (const volume of await this.declaredVolumes(request.image)) tmpfs[volume] ??= `rw,nosuid,nodev,size=${TMP_SIZE},mode=1777`;
    const container = await this.docker.createContainer({
      Image: request.image,
      Cmd: request.argv,
      Env: [`HOME=/tmp`, ...Object.entries(request.env).map(([k, v]) => `${k}=${v}`), ...(request.out ? ['GITJOBS_OUT=/out'] : []), ...(request.inputs ? ['GITJOBS_IN=/in'] : [])],
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
        // Every volume the image declares is a size-capped tmpfs too: none lands on the host's disk.
        Tmpfs: tmpfs,
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        Memory: request.limits.memoryBytes,
        MemorySwap: request.limits.memoryBytes,
        NanoCpus: request.limits.nanoCpus,
        PidsLimit: request.limits.pids,
        Binds: [],
        // Only a task's own /out and /in, tmpfs volumes that its keeper holds (file-mounts.ts): never a host path.
        Mounts: mounts,
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
        const reason = engineReason(err);
        const exitCode = programNotRun(reason, request.argv[0] ?? '');
        // Anything else is the engine's failure, not the task's: an executor error, retried like one (attempt.ts).
        if (exitCode === undefined) throw new Error(`the engine could not start the task's container: ${reason}`);
        // The task's own program could not run: it fails as a shell would say, 127 (not found) or 126 (not executable).
        const out = capture.result();
        return { exitCode, stdout: out.stdout, output: `${out.output}gitjobs: the container could not start ${JSON.stringify(request.argv[0])}: ${reason}\n`, truncated: out.truncated, durationMs: Date.now() - started, timedOut: false };
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
      await container.remove({ force: true, v: true }).catch(() => undefined);
    }
  }
}

