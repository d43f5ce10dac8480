/**
 * The parsers behind the security rules, with fixed cases and random input:
 * Host and credentials (server/access.ts), what counts as a push
 * (http-backend.ts), sizes in settings (cli/options.ts), and masking of
 * output that comes in pieces (core/masking.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPushRequest } from '../../src/adapters/builtin/http-backend.js';
import { parseSize } from '../../src/core/size.js';
import { MaskedStream, SecretMasker } from '../../src/core/masking.js';
import { Access, bodyRefusal, hostName, isLoopback, presentedToken } from '../../src/server/access.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('Host header', () => {
  it('names a host, without port, brackets or final dot, lower case', () => {
    expect(hostName('127.0.0.1:8080')).toBe('127.0.0.1');
    expect(hostName('[::1]:8080')).toBe('::1');
    expect(hostName('Example.ORG.')).toBe('example.org');
    expect(hostName('localhost')).toBe('localhost');
  });

  it('refuses what is not just a host', () => {
    for (const bad of ['', 'a b', 'user:pw@host', 'host/path', 'host?x', 'host#x', '127.1', '[::1', 'exa%6dple.org']) expect(hostName(bad), bad).toBeUndefined();
  });

  it('never throws, and what it returns is a lower-case name without a port', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        const name = hostName(s);
        if (name !== undefined) {
          expect(name).toBe(name.toLowerCase());
          expect(name).not.toMatch(/[/?#@\s]/);
        }
      }),
    );
  });
});

describe('credentials', () => {
  it('a bearer token, or the password of Basic credentials', () => {
    expect(presentedToken('Bearer abc')).toBe('abc');
    expect(presentedToken('bearer  abc')).toBe('abc');
    expect(presentedToken(basic('gitjobs', 'pw:with:colons'))).toBe('pw:with:colons');
    expect(presentedToken(basic('', 'pw'))).toBe('pw');
    expect(presentedToken(`Basic ${Buffer.from('no-colon').toString('base64')}`)).toBeUndefined();
    expect(presentedToken('Token abc')).toBeUndefined();
    expect(presentedToken(undefined)).toBeUndefined();
  });

  it('never throws on any header', () => {
    fc.assert(fc.property(fc.string({ maxLength: 100 }), (s) => void presentedToken(s)));
  });
});

describe('the access rule', () => {
  const token = 'a-token-of-some-length';
  const req = (ip: string, headers: Record<string, string>) => ({ ip, headers: { host: '127.0.0.1:8080', ...headers } });

  it('without a token: loopback clients only', () => {
    const access = new Access();
    expect(access.refusal(req('127.0.0.1', {}))).toBeUndefined();
    expect(access.refusal(req('::1', {}))).toBeUndefined();
    expect(access.refusal(req('::ffff:127.0.0.1', {}))).toBeUndefined();
    const far = access.refusal(req('203.0.113.7', {}), 'pushing to tache_a_faire');
    expect(far).toEqual({ status: 403, error: expect.stringContaining('pushing to tache_a_faire is refused from 203.0.113.7: without GITJOBS_API_TOKEN only loopback clients') });
    expect(access.refusal(req('::ffff:10.1.2.3', {}))?.status).toBe(403);
  });

  it('with a token: the token, from anywhere, as bearer or as Basic password', () => {
    const access = new Access({ token });
    expect(access.refusal(req('127.0.0.1', {}))?.status).toBe(401);
    expect(access.refusal(req('203.0.113.7', { authorization: `Bearer ${token}` }))).toBeUndefined();
    expect(access.refusal(req('203.0.113.7', { authorization: basic('anyone', token) }))).toBeUndefined();
    expect(access.refusal(req('127.0.0.1', { authorization: 'Bearer wrong' }))?.status).toBe(401);
  });

  it('answers only to its own names: IP addresses, localhost, this machine, --host and --public-url', () => {
    const access = new Access({ names: ['0.0.0.0', 'https://jobs.example.org/gitjobs'] });
    for (const host of ['127.0.0.1:1', '[::1]:1', 'localhost:1', 'app.localhost', 'jobs.example.org', '192.0.2.4:8080']) expect(access.refusal(req('127.0.0.1', { host })), host).toBeUndefined();
    const rebound = access.refusal(req('127.0.0.1', { host: 'attacker.example:8080' }));
    expect(rebound).toEqual({ status: 421, error: expect.stringContaining('does not answer to "attacker.example"') });
    expect(access.refusal({ ip: '127.0.0.1', headers: {} })?.status).toBe(400);
  });

  it('refuses a browser request from another site, by Origin or Sec-Fetch-Site', () => {
    const access = new Access();
    expect(access.refusal(req('127.0.0.1', { origin: 'http://127.0.0.1:8080' }))).toBeUndefined();
    expect(access.refusal(req('127.0.0.1', { origin: 'http://attacker.example' }))?.status).toBe(403);
    expect(access.refusal(req('127.0.0.1', { origin: 'http://127.0.0.1:9999' }))?.status).toBe(403);
    expect(access.refusal(req('127.0.0.1', { origin: 'null' }))?.status).toBe(403);
    expect(access.refusal(req('127.0.0.1', { 'sec-fetch-site': 'cross-site' }))?.status).toBe(403);
    expect(access.refusal(req('127.0.0.1', { 'sec-fetch-site': 'same-origin' }))).toBeUndefined();
  });

  it('under random headers: refused unless every part of the rule holds', () => {
    const access = new Access({ token });
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), fc.option(fc.string({ maxLength: 30 })), fc.option(fc.string({ maxLength: 40 })), fc.ipV4(), (host, origin, authorization, ip) => {
        const headers: Record<string, string> = { host };
        if (origin !== null) headers.origin = origin;
        if (authorization !== null) headers.authorization = authorization;
        const r = access.refusal({ ip, headers });
        // Random credentials are never the token.
        expect(r).toBeDefined();
        expect([400, 401, 403, 421]).toContain(r!.status);
      }),
    );
  });

  it('knows loopback addresses', () => {
    for (const ip of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1']) expect(isLoopback(ip), ip).toBe(true);
    for (const ip of ['10.0.0.1', '::ffff:10.0.0.1', '1127.0.0.1', '::2', '0.0.0.0']) expect(isLoopback(ip), ip).toBe(false);
  });
});

describe('bodies of changing endpoints', () => {
  const h = (type: string | undefined, length = '2') => ({ ...(type ? { 'content-type': type } : {}), 'content-length': length });
  it('the API takes JSON or nothing', () => {
    expect(bodyRefusal(h('application/json; charset=utf-8'), 'json')).toBeUndefined();
    expect(bodyRefusal(h(undefined, '0'), 'json')).toBeUndefined();
    expect(bodyRefusal(h('text/plain'), 'json')?.error).toContain('application/json body (or none), not "text/plain"');
    expect(bodyRefusal(h('application/x-www-form-urlencoded'), 'json')?.status).toBe(400);
  });
  it('a queue message may be of any type but what web forms send', () => {
    for (const t of ['text/plain', 'application/octet-stream', 'application/json', 'text/html']) expect(bodyRefusal(h(t), 'message'), t).toBeUndefined();
    for (const t of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) expect(bodyRefusal(h(t), 'message')?.status, t).toBe(400);
    expect(bodyRefusal(h(undefined), 'message')?.status).toBe(400);
  });
});

describe('what counts as a push', () => {
  const push = (path: string, query = '') => isPushRequest(path, new URLSearchParams(query));
  it('any path ending in git-receive-pack, and any service=git-receive-pack among the parameters', () => {
    expect(push('/git/tache_a_faire.git/git-receive-pack')).toBe(true);
    expect(push('/git/tache_suivi.git//git-receive-pack')).toBe(true);
    expect(push('/git/tache_suivi.git/x/../git-receive-pack/')).toBe(true);
    expect(push('/git/tache_suivi.git/git%2Dreceive%2Dpack')).toBe(true);
    expect(push('/git/tache_suivi.git/info/refs', 'service=git-upload-pack&service=git-receive-pack')).toBe(true);
    expect(push('/git/tache_suivi.git/info/refs', 'service=GIT-RECEIVE-PACK')).toBe(true);
    expect(push('/git/tache_suivi.git/info/refs', 'service=git-upload-pack')).toBe(false);
    expect(push('/git/tache_suivi.git/git-upload-pack')).toBe(false);
  });
  it('never throws, and finds the push service wherever it hides in the query', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 12 }), { maxLength: 4 }), (values) => {
        const params = new URLSearchParams(values.map((v) => ['service', v]));
        const withPush = new URLSearchParams([...params.entries()]);
        withPush.append('service', 'git-receive-pack');
        expect(isPushRequest('/git/r.git/info/refs', withPush)).toBe(true);
        void isPushRequest('/git/r.git/' + values.join('/'), params);
      }),
    );
  });
});

describe('sizes in settings', () => {
  it('reads bytes with or without a unit', () => {
    expect(parseSize('64MiB')).toBe(64 * 1024 * 1024);
    expect(parseSize('64m')).toBe(64 * 1024 * 1024);
    expect(parseSize('1048576')).toBe(1048576);
    expect(parseSize('1.5k')).toBe(1536);
    for (const bad of ['', '0', '-1', 'lots', '1 parsec', '1e9']) expect(parseSize(bad), bad).toBeUndefined();
  });
  it('never throws, and a size is a positive whole number', () => {
    fc.assert(fc.property(fc.string({ maxLength: 20 }), (s) => {
      const n = parseSize(s);
      if (n !== undefined) expect(Number.isSafeInteger(n) && n > 0).toBe(true);
    }));
  });
});

describe('masking output that comes in pieces', () => {
  const secret = fc.stringMatching(/^[a-z0-9]{8,20}$/);
  it('masks a secret split anywhere across pieces, and shows everything else in order', () => {
    fc.assert(
      fc.property(fc.array(secret, { minLength: 1, maxLength: 3 }), fc.array(fc.oneof(fc.stringMatching(/^[A-Z \n]{0,12}$/), fc.nat(2)), { maxLength: 12 }), fc.array(fc.nat(40), { maxLength: 8 }), (secrets, parts, cuts) => {
        const masker = new SecretMasker(secrets);
        // Text of plain runs (upper case, never inside a secret) and the secrets themselves.
        const text = parts.map((p) => (typeof p === 'number' ? secrets[p % secrets.length]! : p)).join('');
        const stream = new MaskedStream(masker);
        let shown = '';
        let from = 0;
        for (const c of [...cuts].sort((a, b) => a - b)) {
          const to = Math.min(text.length, c);
          if (to < from) continue;
          shown += stream.push(text.slice(from, to));
          for (const s of secrets) expect(shown).not.toContain(s);
          from = to;
        }
        shown += stream.push(text.slice(from)) + stream.end();
        for (const s of secrets) expect(shown).not.toContain(s);
        expect(shown).toBe(masker.mask(text));
      }),
    );
  });

  it('holds back only what could begin a secret', () => {
    const stream = new MaskedStream(new SecretMasker(['token-1234567890']));
    expect(stream.push('progress 10%\n')).toBe('progress 10%\n');
    expect(stream.push('token=tok')).toBe('token=');
    expect(stream.push('en-1234567890 done')).toBe('*** done');
    expect(stream.push('tok')).toBe('');
    expect(stream.end()).toBe('tok');
  });
});
