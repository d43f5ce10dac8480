/**
 * The pack writer against git itself: `git index-pack` must read every
 * entry of a pack we wrote (whole objects, stored and compressed; deltas,
 * near and far), find the same ids, and write an index identical to ours.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { adler32, encodePack, type PackObject } from '../../src/adapters/git/pack.js';
import { encodeObject, encodeTree } from '../../src/adapters/git/objects.js';
import { rmTree } from '../helpers/stack.js';

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'gitjobs-pack-'));
}

describe('encodePack', () => {
  it('writes a pack git reads whole, with an index byte for byte as git index-pack writes it', () => {
    const objects: PackObject[] = [];
    // Small (stored) and larger (deflated) blobs, one above the 64 KiB of a stored block.
    objects.push(encodeObject('blob', Buffer.from('tiny\n')));
    objects.push(encodeObject('blob', Buffer.from('{"state":"succeeded"}\n'.repeat(40))));
    const big = Buffer.alloc(200_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
    objects.push(encodeObject('blob', big));
    // A tree rewritten a hundred times, one entry changed each time: a chain of deltas longer than the writer allows.
    const entries = Array.from({ length: 300 }, (_, i) => ({ mode: '100644', name: `t${i}.json`, oid: objects[i % 2]!.oid }));
    let previous: string | undefined;
    for (let v = 0; v < 100; v++) {
      entries[(v * 37) % entries.length]!.oid = objects[v % 2 ? 0 : 1]!.oid;
      const tree = encodeTree(entries);
      objects.push(previous ? { ...tree, deltaBase: previous } : tree);
      previous = tree.oid;
      // Filler between versions, so that the distances back to a base need two and three bytes.
      objects.push(encodeObject('blob', Buffer.from(`filler ${v} `.repeat(30 + v * 40))));
    }
    const { pack, idx, name } = encodePack(objects);
    const dir = tmp();
    try {
      execFileSync('git', ['init', '-q', '--bare', dir]);
      const file = path.join(dir, `pack-${name}.pack`);
      fs.writeFileSync(file, pack);
      // index-pack recomputes every id from the bytes, resolving every delta, and fails on any error.
      const printed = execFileSync('git', ['--git-dir', dir, 'index-pack', '-o', path.join(dir, 'git.idx'), file], { encoding: 'utf8' }).trim();
      expect(printed).toBe(name);
      expect(fs.readFileSync(path.join(dir, 'git.idx')).equals(idx)).toBe(true);
      fs.copyFileSync(path.join(dir, 'git.idx'), path.join(dir, `pack-${name}.idx`));
      const listed = execFileSync('git', ['--git-dir', dir, 'verify-pack', '-v', file], { encoding: 'utf8' });
      for (const o of objects) expect(listed).toContain(o.oid);
      // Some versions went in as deltas, and none deeper than the writer's limit.
      const depths = [...listed.matchAll(/^[0-9a-f]{40} tree\s+\d+ \d+ \d+ (\d+) [0-9a-f]{40}$/gm)].map((m) => Number(m[1]));
      expect(depths.length).toBeGreaterThan(50);
      expect(Math.max(...depths)).toBeLessThanOrEqual(16);
    } finally {
      rmTree(dir);
    }
  });

  it('adler32 is zlib’s, past the 5552 bytes where zlib takes the modulo', () => {
    const data = Buffer.alloc(70_000, 0xff);
    // A stored zlib stream ends with the adler of its data: zlib's own inflate checks it.
    const stored = Buffer.concat([Buffer.from([0x78, 0x01]), ...[0, 1].map((i) => {
      const chunk = data.subarray(i * 65535, (i + 1) * 65535);
      const head = Buffer.from([i === 1 ? 1 : 0, chunk.length & 0xff, chunk.length >> 8, ~chunk.length & 0xff, (~chunk.length >> 8) & 0xff]);
      return Buffer.concat([head, chunk]);
    }), Buffer.from([0, 0, 0, 0])]);
    stored.writeUInt32BE(adler32(data), stored.length - 4);
    expect(inflateSync(stored).equals(data)).toBe(true);
    expect(adler32(Buffer.from('Wikipedia'))).toBe(0x11e60398);
  });
});
