import type { ChangedFile } from '../../core/ports.js';
import { isTreeMode, type TreeItem } from './objects.js';

/**
 * The files that differ between two trees, walking into a folder only when
 * its tree id differs: what a push changed, in `git diff --name-status` order.
 */
export async function diffTrees(readTree: (oid: string) => Promise<TreeItem[]>, a: string | undefined, b: string | undefined, prefix = '', out: ChangedFile[] = []): Promise<ChangedFile[]> {
  if (a === b) return out;
  const read = async (oid: string | undefined) => new Map((oid ? await readTree(oid) : []).map((e) => [e.name, e]));
  const [ea, eb] = await Promise.all([read(a), read(b)]);
  for (const name of [...new Set([...ea.keys(), ...eb.keys()])].sort()) {
    const x = ea.get(name);
    const y = eb.get(name);
    if (x?.oid === y?.oid) continue;
    const p = prefix + name;
    const xTree = x && isTreeMode(x.mode) ? x.oid : undefined;
    const yTree = y && isTreeMode(y.mode) ? y.oid : undefined;
    if (xTree || yTree) await diffTrees(readTree, xTree, yTree, `${p}/`, out);
    const xBlob = x && !isTreeMode(x.mode);
    const yBlob = y && !isTreeMode(y.mode);
    if (xBlob && yBlob) out.push({ path: p, status: 'modified' });
    else if (yBlob) out.push({ path: p, status: 'added' });
    else if (xBlob) out.push({ path: p, status: 'deleted' });
  }
  return out;
}
