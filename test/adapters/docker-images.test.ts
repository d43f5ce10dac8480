/**
 * Worker images against the real Docker engine: named by the worker folder's
 * tree and the base image, and pruned to the newest few once old enough.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DockerExecutor, KEEP_IMAGES } from '../../src/adapters/docker/executor.js';
import { DEFAULT_SETTINGS } from '../../src/core/settings.js';
import { rmTree } from '../helpers/stack.js';

const worker = `prunetest${process.pid}`;
const docker = new DockerExecutor({ baseImage: DEFAULT_SETTINGS.baseImage });
const labelled = async () => (await docker.docker.listImages({ filters: { label: [`io.gitjobs.worker=${worker}`] } })).sort((a, b) => a.Created - b.Created);
const dirs: string[] = [];

afterAll(async () => {
  for (const i of await labelled()) await docker.docker.getImage(i.Id).remove({ force: true }).catch(() => undefined);
  for (const d of dirs) rmTree(d);
});

function folder(version: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-prune-'));
  dirs.push(dir);
  fs.writeFileSync(path.join(dir, 'Dockerfile'), `ARG BASE_IMAGE=gitjobs-base:latest\nFROM \${BASE_IMAGE}\nRUN echo ${version} > /version\nUSER 1000:1000\n`);
  return dir;
}

describe('worker images', () => {
  it('are tagged by worker tree and base image; a build prunes to the newest few, once old enough, never one its own process uses', async () => {
    const base = (await docker.docker.getImage(DEFAULT_SETTINGS.baseImage).inspect()).Id;
    const built: string[] = [];
    for (let v = 1; v <= KEEP_IMAGES + 2; v++) {
      // Each build by an executor of its own, as other processes would: none protects another's images.
      const other = new DockerExecutor({ baseImage: DEFAULT_SETTINGS.baseImage, pruneGraceMs: 0 });
      const tree = `${v}`.padEnd(40, 'a');
      built.push(await other.prepare({ name: worker, commit: 'c'.repeat(40), tree, dir: folder(v) }));
      expect((await docker.docker.getImage(built.at(-1)!).inspect()).RepoTags).toEqual([DockerExecutor.tagFor({ name: worker, commit: 'c'.repeat(40), tree }, base)]);
      // Created times are in whole seconds: a second apart keeps their order plain.
      await new Promise((r) => setTimeout(r, 1100));
    }
    expect((await labelled()).map((i) => i.Id)).toEqual(built.slice(-KEEP_IMAGES));
    expect(DockerExecutor.tagFor({ name: 'Default', commit: 'c'.repeat(40), tree: 'f'.repeat(40) }, 'sha256:0123456789abcdef')).toBe('gitjobs-worker-default:ffffffffffff-0123456789ab');
    // An executor that uses the oldest kept image does not prune it when it builds a newer one.
    const user = new DockerExecutor({ baseImage: DEFAULT_SETTINGS.baseImage, pruneGraceMs: 0 });
    const oldest = built.at(-KEEP_IMAGES)!;
    expect(await user.prepare({ name: worker, commit: 'c'.repeat(40), tree: `${KEEP_IMAGES}`.padEnd(40, 'a'), dir: folder(KEEP_IMAGES) })).toBe(oldest);
    built.push(await user.prepare({ name: worker, commit: 'c'.repeat(40), tree: 'b'.repeat(40), dir: folder(98) }));
    expect((await labelled()).map((i) => i.Id)).toContain(oldest);
    expect(await labelled()).toHaveLength(KEEP_IMAGES + 1);
    // Not old enough yet (the default grace is a day): nothing pruned.
    const patient = new DockerExecutor({ baseImage: DEFAULT_SETTINGS.baseImage });
    built.push(await patient.prepare({ name: worker, commit: 'c'.repeat(40), tree: 'd'.repeat(40), dir: folder(99) }));
    expect(await labelled()).toHaveLength(KEEP_IMAGES + 2);
  });
});
