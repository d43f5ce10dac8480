/** Commit statuses through each forge's REST API, against the loopback stand-in. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GiteaForge } from '../../src/adapters/forges/gitea.js';
import { GitHubForge } from '../../src/adapters/forges/github.js';
import { startStandIn, type StandIn } from '../helpers/forge-standin.js';

let standIn: StandIn;
beforeAll(async () => {
  standIn = await startStandIn({ seed: false });
});
afterAll(async () => {
  await standIn.close();
});

const sha = 'abcdef0123456789abcdef0123456789abcdef01';
const status = { state: 'pending' as const, description: '7/12 tasks done', targetUrl: 'http://127.0.0.1:8080/api/runs/q12-1a2b3c4', context: 'gitjobs/q12' };

describe('commit statuses', () => {
  it('GitHub: POST /repos/{owner}/{repo}/statuses/{sha} with the token', async () => {
    const forge = new GitHubForge({ token: standIn.token, owner: 'alice', apiUrl: `${standIn.url}/gh` });
    await forge.setStatus('tache_a_faire', sha, status);
    expect(standIn.calls.at(-1)).toEqual({
      method: 'POST',
      path: `/gh/repos/alice/tache_a_faire/statuses/${sha}`,
      auth: `token ${standIn.token}`,
      body: { state: 'pending', description: '7/12 tasks done', context: 'gitjobs/q12', target_url: status.targetUrl },
    });
    expect(forge.cloneUrl('config')).toBe('https://github.com/alice/config.git');
  });

  it('Gitea: POST /api/v1/repos/{owner}/{repo}/statuses/{sha} with the token', async () => {
    const forge = new GiteaForge({ token: standIn.token, owner: 'alice', url: standIn.url });
    await forge.setStatus('tache_a_faire', sha, { ...status, state: 'success', description: '12/12 tasks done' });
    expect(standIn.calls.at(-1)).toEqual({
      method: 'POST',
      path: `/api/v1/repos/alice/tache_a_faire/statuses/${sha}`,
      auth: `token ${standIn.token}`,
      body: { state: 'success', description: '12/12 tasks done', context: 'gitjobs/q12', target_url: status.targetUrl },
    });
    expect(forge.cloneUrl('config')).toBe(`${standIn.url}/alice/config.git`);
  });

  it('reports a refused token as an error naming the call', async () => {
    const forge = new GiteaForge({ token: 'wrong', owner: 'alice', url: standIn.url });
    await expect(forge.setStatus('tache_a_faire', sha, status)).rejects.toThrow(/Gitea POST \/repos\/alice\/tache_a_faire\/statuses\/\w+: 401/);
  });
});
