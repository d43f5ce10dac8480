/**
 * /out and /in for a task container.
 *
 * A tmpfs mounted into the task container is gone the moment the task
 * exits, before anything can read it. So a task with files gets two Docker
 * volumes of the local driver, each a size-capped tmpfs owned by the task's
 * user, and a keeper: a container of the same image, with no network and
 * nothing to do but sleep, that holds both volumes mounted for as long as
 * the attempt lasts. /in is filled through the keeper before the task
 * starts (and mounted read-only into the task); /out is read back through
 * it after the task exits. Then the keeper and both volumes are removed.
 * Nothing touches the host's disk, and all of it goes through the Docker
 * API, so a remote engine works too. Tasks without files pay none of this.
 */
import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import type { ExecRequest, ExecResult } from '../../core/ports.js';
import { formatBytes, OUT_FILES_MAX } from '../../core/files.js';
import { readTar, tarOf, withReadBack } from '../task-files.js';
import { engineReason, programNotRun } from './start-errors.js';

/** Room in /in beyond the inputs' own bytes: each file takes whole pages of a tmpfs. */
const IN_SLACK = 1024 * 1024;

export class FileMounts {
  private constructor(
    private readonly docker: Docker,
    private readonly request: ExecRequest,
    private readonly keeper: Docker.Container,
    private readonly volumes: string[],
    /** What the task container mounts. */
    readonly mounts: Docker.MountSettings[],
  ) {}

  /** Makes the volumes and starts the keeper; what is made is removed again if a later step fails. */
  static async open(docker: Docker, request: ExecRequest, task: { label: string; user: string }): Promise<FileMounts> {
    const id = randomBytes(6).toString('hex');
    // Both volumes, and what is put in /in, belong to the task's user.
    const [uid, gid] = task.user.split(':').map(Number) as [number, number];
    const labels = { [task.label]: 'true', 'io.gitjobs.files': 'true', ...request.labels };
    const volumes: string[] = [];
    const mounts: Docker.MountSettings[] = [];
    let keeper: Docker.Container | undefined;
    try {
      const volume = async (kind: 'out' | 'in', bytes: number): Promise<string> => {
        const name = `gitjobs-${kind}-${id}`;
        await docker.createVolume({
          Name: name,
          Driver: 'local',
          DriverOpts: { type: 'tmpfs', device: 'tmpfs', o: `size=${bytes},uid=${uid},gid=${gid},mode=0755,nosuid,nodev` },
          Labels: labels,
        });
        volumes.push(name);
        return name;
      };
      // The cap itself is checked byte for byte once the task exits (files.ts); the tmpfs, a little larger to leave
      // room for its pages, only stops a runaway task from filling memory, so that one past its cap fails saying so.
      if (request.out) mounts.push({ Type: 'volume', Source: await volume('out', request.out.maxBytes + IN_SLACK + OUT_FILES_MAX * 4096), Target: '/out' });
      if (request.inputs) {
        const bytes = request.inputs.reduce((n, f) => n + f.data.length + 4096, IN_SLACK);
        mounts.push({ Type: 'volume', Source: await volume('in', bytes), Target: '/in', ReadOnly: true });
      }
      keeper = await startKeeper(docker, {
        Image: request.image,
        Entrypoint: ['sleep'],
        Cmd: [String(Math.ceil(request.timeoutMs / 1000) + 3600)],
        User: task.user,
        Labels: { ...labels, 'io.gitjobs.keeper': 'true' },
        NetworkDisabled: true,
        HostConfig: {
          NetworkMode: 'none',
          ReadonlyRootfs: true,
          CapDrop: ['ALL'],
          SecurityOpt: ['no-new-privileges'],
          // Room for runc's own start as well as `sleep`: an init killed for memory fails the start.
          Memory: 64 * 1024 * 1024,
          PidsLimit: 8,
          // The keeper fills /in, so it mounts it writable; the task does not.
          Mounts: mounts.map((m) => ({ ...m, ReadOnly: false })),
        },
      });
      // Into the volume (Docker refuses a read-only root file system itself).
      if (request.inputs) await keeper.putArchive(tarOf(request.inputs, '', { uid, gid }), { path: '/in' });
      return new FileMounts(docker, request, keeper, volumes, mounts);
    } catch (err) {
      await remove(docker, keeper, volumes);
      throw new Error(`the task's /out and /in could not be set up: ${(err as Error).message}`);
    }
  }

  /** The task's result with what it left under /out (read only after a success). */
  async collect(result: ExecResult): Promise<ExecResult> {
    const out = this.request.out;
    if (!out) return result;
    if (result.exitCode !== 0 || result.timedOut) {
      // Writing past the cap fails inside the task, which may not say why.
      const full = /No space left on device/i.test(result.output) ? `gitjobs: /out may be full: this task may write at most ${formatBytes(out.maxBytes)} there\n` : '';
      return full ? { ...result, output: result.output + full } : result;
    }
    const stream = await this.keeper.getArchive({ path: '/out' });
    return withReadBack(result, await readTar(stream, 'out', out.maxBytes));
  }

  async close(): Promise<void> {
    await remove(this.docker, this.keeper, this.volumes);
  }
}

/** Tries of starting a keeper: the engine now and then fails a start for reasons of its own (runc's "cannot start a stopped process"). */
const KEEPER_TRIES = 3;

/** Creates and starts a keeper; a start the engine fails is tried again with a fresh container, a missing `sleep` is not. */
async function startKeeper(docker: Docker, spec: Docker.ContainerCreateOptions): Promise<Docker.Container> {
  for (let attempt = 1; ; attempt++) {
    const keeper = await docker.createContainer(spec);
    try {
      await keeper.start();
      return keeper;
    } catch (err) {
      await keeper.remove({ force: true }).catch(() => undefined);
      const reason = engineReason(err);
      if (programNotRun(reason, 'sleep') === 127) throw new Error(`a task with files needs \`sleep\` in its worker image, to hold its /out and /in: ${reason}`);
      if (attempt >= KEEPER_TRIES) throw new Error(`its keeper container did not start (${KEEPER_TRIES} tries): ${reason}`);
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}

async function remove(docker: Docker, keeper: Docker.Container | undefined, volumes: string[]): Promise<void> {
  await keeper?.remove({ force: true }).catch(() => undefined);
  for (const v of volumes) await docker.getVolume(v).remove({ force: true }).catch(() => undefined);
}

/** Volumes of task files whose worker process is gone (reapOrphans). */
export async function orphanVolumes(docker: Docker, host: string, alive: (pid: number) => boolean): Promise<number> {
  const { Volumes } = await docker.listVolumes({ filters: { label: ['io.gitjobs.files=true', `io.gitjobs.worker-host=${host}`] } });
  let n = 0;
  for (const v of Volumes ?? []) {
    const pid = Number(v.Labels?.['io.gitjobs.worker-pid']);
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) continue;
    await docker.getVolume(v.Name).remove({ force: true }).then(() => n++, () => undefined);
  }
  return n;
}
