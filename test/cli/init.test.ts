/**
 * `gitjobs init` against the loopback stand-in for GitHub's and Gitea's
 * APIs: the requests are checked (method, path, auth header, body), the
 * repositories get the template, the webhooks the generated secret.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startStandIn, type StandIn } from '../helpers/forge-standin.js';
import { rmTree, tmpdir } from '../helpers/stack.js';

const CLI = path.resolve('dist/cli/main.js');
const REPOS = ['tache_a_faire', 'tache_suivi', 'tache_termine', 'config'];
let standIn: StandIn | undefined;
let home = '';
afterEach(async () => {
  await standIn?.close();
  rmTree(home);
});

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe.each([
  ['gitea', (s: StandIn) => ['--forge-url', s.url], (s: StandIn) => ({ GITEA_TOKEN: s.token }), '/api/v1', `token `],
  ['github', (s: StandIn) => ['--forge-url', `${s.url}/gh`], (s: StandIn) => ({ GITHUB_TOKEN: s.token }), '/gh', `token `],
] as const)('gitjobs init --forge %s', (kind, urlArgs, tokenEnv, prefix, scheme) => {
  it('creates the repositories, seeds them from repos-template, registers webhooks with a secret kept out of output', async () => {
    standIn = await startStandIn({ seed: false });
    home = tmpdir('init-home');
    const args = ['init', '--forge', kind, '--owner', standIn.owner, ...urlArgs(standIn), '--public-url', 'http://gitjobs.example.test:8080', '--home', home];
    const r = await cli(args, tokenEnv(standIn));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const repo of REPOS) expect(r.stdout).toMatch(new RegExp(`${repo}\\s+created\\s+seeded from repos-template`));

    const secret = fs.readFileSync(path.join(home, 'webhook-secret'), 'utf8').trim();
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    expect(fs.statSync(path.join(home, 'webhook-secret')).mode & 0o777).toBe(0o600);
    expect(r.stdout).not.toContain(secret);
    expect(r.stdout).not.toContain(standIn.token);

    // Every API call carried the token, and only the API saw it.
    expect(standIn.calls.length).toBeGreaterThan(0);
    for (const c of standIn.calls) expect(c.auth).toBe(`${scheme}${standIn.token}`);
    const creates = standIn.calls.filter((c) => c.method === 'POST' && c.path === `${prefix}/user/repos`);
    expect(creates.map((c) => (c.body as { name: string }).name)).toEqual(REPOS);
    expect(creates.every((c) => (c.body as { private: boolean }).private === true)).toBe(true);

    // Webhooks only on todo and config, push events, JSON, the saved secret.
    const hookCalls = standIn.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/hooks'));
    expect(hookCalls.map((c) => c.path)).toEqual([`${prefix}/repos/alice/tache_a_faire/hooks`, `${prefix}/repos/alice/config/hooks`]);
    for (const c of hookCalls) {
      expect(c.body).toMatchObject({ events: ['push'], active: true, config: { url: `http://gitjobs.example.test:8080/webhooks/${kind}`, content_type: 'json', secret } });
      if (kind === 'gitea') expect(c.body).toMatchObject({ type: 'gitea' });
    }

    // The template landed on the forge's Git side.
    const todoHead = (await standIn.store.head('tache_a_faire'))!;
    expect(await standIn.store.readFile('tache_a_faire', todoHead, 'examples/nqueens-12.json')).toContain('"nqueens"');
    const configHead = (await standIn.store.head('config'))!;
    expect(await standIn.store.readFile('config', configHead, 'workers/default/Dockerfile')).toContain('FROM ${BASE_IMAGE}');

    // Again: everything is reused, content kept, hooks updated rather than doubled.
    standIn.calls.length = 0;
    const again = await cli(args, tokenEnv(standIn));
    expect(again.code, again.stderr).toBe(0);
    for (const repo of REPOS) expect(again.stdout).toMatch(new RegExp(`${repo}\\s+reused\\s+content kept`));
    expect(standIn.hooks.get('tache_a_faire')).toHaveLength(1);
    expect(standIn.calls.filter((c) => c.method === 'POST' && c.path === `${prefix}/user/repos`)).toHaveLength(0);
    expect(standIn.calls.filter((c) => c.method === 'PATCH').map((c) => c.path)).toEqual([`${prefix}/repos/alice/tache_a_faire/hooks/1`, `${prefix}/repos/alice/config/hooks/2`]);
  });

  it('needs its token from the environment and says so', async () => {
    standIn = await startStandIn({ seed: false });
    home = tmpdir('init-home');
    const r = await cli(['init', '--forge', kind, '--owner', 'alice', ...urlArgs(standIn), '--public-url', 'http://x', '--home', home], { GITEA_TOKEN: '', GITHUB_TOKEN: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(kind === 'gitea' ? 'GITEA_TOKEN' : 'GITHUB_TOKEN');
  });
});
