/**
 * A push to one of the repositories, as every forge reports it: the built-in
 * Git host, a GitHub or Gitea webhook, or the poller. One code path from here
 * to tasks.
 */
export interface PushEvent {
  /** Repository name, e.g. `tache_a_faire`. */
  repo: string;
  ref: string;
  /** Zero id (40 zeros) when the branch was created by this push. */
  before: string;
  after: string;
  source: string;
  /** Forge delivery id, when there is one. */
  deliveryId?: string;
  /** The repository's clone URL as the forge reported it. */
  cloneUrl?: string;
}

export const ZERO_SHA = '0'.repeat(40);
