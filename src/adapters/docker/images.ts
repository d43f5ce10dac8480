/**
 * Worker images: built from a worker's folder of the config repository on
 * the base image, in the build sandbox (build.ts), named by what they are
 * built from, and pruned to the newest few once a newer one is built.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import type { WorkerSource } from '../../core/ports.js';
import { BUILD_LIMITS, buildCgroup, buildLogFile, buildOptions, followBuild, type BuildLimits } from './build.js';

/** Images kept per worker when a new one is built. */
export const KEEP_IMAGES = 3;
const BASE_ID_TTL_MS = 10_000;
const RECHECK_MS = 60_000;
const PRUNE_GRACE_MS = 24 * 3_600_000;

export interface WorkerImagesOptions {
  /** Image the worker Dockerfiles start FROM, passed as build argument BASE_IMAGE. */
  baseImage: string;
  /** Limits of image builds (build.ts). */
  buildLimits?: BuildLimits;
  /** Where each image's build log is kept. */
  buildLogDir?: string;
  /** Old worker images are pruned only once they are this old (default 24 h): another worker may still be using one. */
  pruneGraceMs?: number;
  log?: { warn(obj: object, msg: string): void };
}

/**
 * A worker's image is named by what it is built from: the tree id of its
 * folder and the base image's id (`gitjobs-worker-default:<tree>-<base>`),
 * so that a config commit that does not touch a worker, or touches it back
 * to an earlier state, finds the image it had. A source without a tree id
 * (not read from Git) is named by its commit.
 */
export function tagFor(source: Pick<WorkerSource, 'name' | 'commit' | 'tree'>, baseImageId?: string): string {
  const key = source.tree ? `${source.tree.slice(0, 12)}-${(baseImageId ?? '').replace('sha256:', '').slice(0, 12)}` : source.commit.slice(0, 12);
  return `gitjobs-worker-${source.name.toLowerCase()}:${key}`;
}

export class WorkerImages {
  private readonly building = new Map<string, { id: Promise<string>; found?: number }>();
  /** Images this process prepared, and when: never pruned by it. */
  private readonly prepared = new Map<string, number>();
  private cgroup: Promise<string | undefined> | undefined;
  private base: { at: number; id: Promise<string> } | undefined;

  constructor(
    private readonly docker: Docker,
    private readonly options: WorkerImagesOptions,
  ) {}



  /**
   * The image for a worker at a config commit: built once, then found by its
   * tag. What this process found is looked at again after a minute, so that
   * an image removed meanwhile (by a prune elsewhere) is built again.
   */
  async prepare(source: WorkerSource): Promise<string> {
    const tag = tagFor(source, source.tree ? await this.baseImageId() : undefined);
    let cached = this.building.get(tag);
    // A build still going is waited for, never started twice.
    if (!cached || (cached.found !== undefined && Date.now() - cached.found > RECHECK_MS)) {
      const entry: { id: Promise<string>; found?: number } = { id: this.findOrBuild(tag, source) };
      this.building.set(tag, entry);
      entry.id.then(
        (i) => {
          entry.found = Date.now();
          this.prepared.set(i, entry.found);
        },
        () => this.building.delete(tag),
      );
      cached = entry;
    }
    return cached.id;
  }

  async baseImage(): Promise<string | undefined> {
    const id = await this.baseImageId();
    return id.startsWith('sha256:') ? id : undefined;
  }

  /** The base image's id, looked at again after a while: rebuilt, it makes new worker images. */
  private baseImageId(): Promise<string> {
    const now = Date.now();
    if (!this.base || now - this.base.at > BASE_ID_TTL_MS) {
      const id = this.docker
        .getImage(this.options.baseImage)
        .inspect()
        .then((i) => i.Id)
        // A base image that is not there yet (pulled by the first build): its name stands for it.
        .catch(() => this.options.baseImage);
      this.base = { at: now, id };
    }
    return this.base.id;
  }

  /**
   * Images of a worker that no run is likely to need any more: all but the
   * KEEP_IMAGES newest, once older than the grace period, and none this
   * process uses. One in use by a container is left (Docker refuses), and a
   * run that needs a pruned one builds it again.
   */
  private async prune(worker: string): Promise<void> {
    const graceS = (this.options.pruneGraceMs ?? PRUNE_GRACE_MS) / 1000;
    const images = await this.docker.listImages({ filters: { label: [`io.gitjobs.worker=${worker}`] } });
    const old = images.sort((a, b) => b.Created - a.Created).slice(KEEP_IMAGES);
    for (const image of old) {
      if (Date.now() / 1000 - image.Created < graceS || this.prepared.has(image.Id)) continue;
      await this.docker.getImage(image.Id).remove().catch(() => undefined);
    }
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
    const limits = this.options.buildLimits ?? BUILD_LIMITS;
    const timeout = AbortSignal.timeout(limits.timeoutMs);
    const signal = new AbortController();
    timeout.addEventListener('abort', () => signal.abort(`the build took longer than ${Math.round(limits.timeoutMs / 1000)} s and was stopped`));
    const stream = await this.docker.buildImage(
      { context: source.dir, src: listFiles(source.dir) },
      {
        t: tag,
        buildargs: { BASE_IMAGE: this.options.baseImage },
        rm: true,
        forcerm: true,
        labels: { 'io.gitjobs.worker': source.name, 'io.gitjobs.config-commit': source.commit, ...(source.tree ? { 'io.gitjobs.worker-tree': source.tree } : {}) },
        ...buildOptions(limits, await this.buildCgroup(limits)),
        abortSignal: signal.signal,
      } as Docker.ImageBuildOptions,
    );
    const logFile = buildLogFile(this.options.buildLogDir ?? path.join(os.tmpdir(), 'gitjobs-builds'), tag);
    const built = await followBuild(this.docker, stream, logFile, signal.signal);
    if (built.error) {
      const tail = built.tail.trim().split('\n').slice(-10).join('\n');
      throw new Error(`building workers/${source.name} at config ${source.commit.slice(0, 7)} failed: ${built.error}\n${tail}\n(whole build log: ${logFile})`);
    }
    const id = (await this.docker.getImage(tag).inspect()).Id;
    await this.prune(source.name).catch((err: Error) => this.options.log?.warn({ worker: source.name, err: err.message }, 'could not prune old worker images'));
    return id;
  }

  /** The cgroup parent that caps the builds' processes, made once; without one, builds have no process limit, and the log says why. */
  private buildCgroup(limits: BuildLimits): Promise<string | undefined> {
    this.cgroup ??= buildCgroup(this.docker, limits.pids).then((r) => {
      if ('parent' in r) return r.parent;
      this.options.log?.warn({ reason: r.missing }, 'image builds run without a process limit');
      return undefined;
    });
    return this.cgroup;
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
