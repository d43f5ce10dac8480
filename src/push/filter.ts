/**
 * Whether a push concerns gitjobs, decided in one place for every source
 * (built-in host, GitHub and Gitea webhooks, the poller): a push to the
 * watched branch of the todo repository starts runs; one to the config
 * repository's branch builds worker images; anything else is ignored, saying why.
 */
import { ZERO_SHA, type PushEvent } from '../core/events.js';

export type PushTarget = 'todo' | 'config';

export interface PushFilter {
  branch: string;
  repos: { todo: string; config: string };
}

export function classifyPush(event: Pick<PushEvent, 'repo' | 'ref' | 'after'>, filter: PushFilter): { target: PushTarget } | { ignored: string } {
  const { branch, repos } = filter;
  if (event.ref.startsWith('refs/tags/')) return { ignored: `tag push (${event.ref}) ignored: only branch ${branch} starts runs` };
  if (event.ref !== `refs/heads/${branch}`) return { ignored: `push to ${event.ref} ignored: only ${branch} is watched` };
  if (event.after === ZERO_SHA) return { ignored: `branch ${branch} deleted: nothing to run` };
  if (event.repo === repos.todo) return { target: 'todo' };
  if (event.repo === repos.config) return { target: 'config' };
  return { ignored: `repository ${event.repo} is not one of gitjobs' repositories (${repos.todo}, ${repos.config})` };
}
