/** Git's object ids, as `git hash-object` computes them: the same bytes always have the same id. */
import { createHash } from 'node:crypto';

export function gitObjectId(type: 'blob' | 'tree' | 'commit' | 'tag', body: Buffer | string): string {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return createHash('sha1').update(`${type} ${bytes.length}\0`).update(bytes).digest('hex');
}

/** The id of a file holding this text. */
export const blobId = (text: string) => gitObjectId('blob', text);
