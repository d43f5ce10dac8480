/**
 * The file system isomorphic-git writes through: node's, except that every
 * file is written to a temporary name and renamed into place, as git itself
 * does. isomorphic-git writes a loose object straight to its final path and
 * never rewrites one that exists, so a process killed in the middle of a write
 * would leave a truncated object that every later commit reusing it points at
 * (`Invalid compressed buffer` on every read from then on). With a rename,
 * an object or a ref is either whole or absent.
 *
 * Temporary files are named `tmp_obj_*` in the object folders (what
 * `git prune` cleans up) and `.<name>.<pid>.<n>.tmp` elsewhere (a leading dot
 * is never a valid ref name, so git never mistakes one for a ref).
 */
import fs from 'node:fs';
import path from 'node:path';

let counter = 0;

function temporaryName(file: string): string {
  const dir = path.dirname(file);
  const unique = `${process.pid}_${++counter}_${Math.random().toString(36).slice(2, 8)}`;
  const inObjects = path.basename(path.dirname(dir)) === 'objects' || path.basename(dir) === 'objects' || path.basename(dir) === 'pack';
  return inObjects ? path.join(dir, `tmp_obj_${unique}`) : path.join(dir, `.${path.basename(file)}.${unique}.tmp`);
}

/** Writes `file` whole or not at all: to a temporary name in its folder, then renamed into place. */
export async function writeFileAtomic(file: fs.PathLike | fs.promises.FileHandle, data: string | Uint8Array, options?: fs.WriteFileOptions): Promise<void> {
  if (typeof file !== 'string') return fs.promises.writeFile(file, data, options as Parameters<typeof fs.promises.writeFile>[2]);
  const tmp = temporaryName(file);
  try {
    await fs.promises.writeFile(tmp, data, options as Parameters<typeof fs.promises.writeFile>[2]);
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** Pass as `fs` to every isomorphic-git call that may write. */
export const safeFs = {
  promises: {
    readFile: fs.promises.readFile,
    writeFile: writeFileAtomic,
    mkdir: fs.promises.mkdir,
    rmdir: fs.promises.rmdir,
    rm: fs.promises.rm,
    unlink: fs.promises.unlink,
    stat: fs.promises.stat,
    lstat: fs.promises.lstat,
    readdir: fs.promises.readdir,
    readlink: fs.promises.readlink,
    symlink: fs.promises.symlink,
    chmod: fs.promises.chmod,
  },
};
