/**
 * One normaliser for GitHub's and Gitea's (and Forgejo's) push payloads. They
 * differ in details — Gitea says `compare_url` where GitHub says `compare`,
 * its `head_commit` may be null and its lists may be null — but agree on what
 * gitjobs needs: `ref`, `before`, `after`, the repository and its clone URL.
 */
import type { PushEvent } from '../core/events.js';
import { ZERO_SHA } from '../core/events.js';

export type Normalised = { ok: true; event: PushEvent } | { ok: false; reason: string };

const SHA = /^[0-9a-f]{40}$/;

function field(obj: unknown, key: string): unknown {
  return obj !== null && typeof obj === 'object' ? (obj as Record<string, unknown>)[key] : undefined;
}

export function normalisePush(source: 'github' | 'gitea', payload: unknown, deliveryId?: string): Normalised {
  const ref = field(payload, 'ref');
  const before = field(payload, 'before');
  const after = field(payload, 'after');
  const repository = field(payload, 'repository');
  const name = field(repository, 'name');
  const cloneUrl = field(repository, 'clone_url');
  if (typeof ref !== 'string') return { ok: false, reason: 'push payload has no "ref"' };
  if (typeof after !== 'string' || !SHA.test(after)) return { ok: false, reason: 'push payload has no 40-hex "after" commit' };
  if (typeof name !== 'string' || !name) return { ok: false, reason: 'push payload has no "repository.name"' };
  const event: PushEvent = {
    repo: name,
    ref,
    before: typeof before === 'string' && SHA.test(before) ? before : ZERO_SHA,
    after,
    source,
  };
  if (deliveryId) event.deliveryId = deliveryId;
  if (typeof cloneUrl === 'string') event.cloneUrl = cloneUrl;
  return { ok: true, event };
}
