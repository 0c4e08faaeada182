// Minted credentials (issue 25): jwt grants. The material is the user's own JWT; keyway reads its
// exp (no signature check), sends it as a bearer token while it is valid, and never once it is past
// exp (401 token_expired, with the hint). Driven through keyway by curl and Node's fetch against an
// upstream that takes only the valid token.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, nodeFetch } from '../../../../test/helpers/clients.ts';
import { CANARY } from '../../../../test/helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../../../../test/helpers/keyway.ts';
import { findLeak } from '../../../../test/helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../../../../test/helpers/upstream.ts';

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const jwt = (payload: Record<string, unknown>) =>
  `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(payload)}.${Buffer.from(`${CANARY}-signature`).toString('base64url')}`;
const now = () => Math.floor(Date.now() / 1000);

describe('jwt grants: the token is sent while valid, never after its exp', () => {
  const valid = jwt({ sub: `${CANARY}-user`, exp: now() + 2 * 86_400 });
  const expired = jwt({ sub: `${CANARY}-old`, exp: now() - 60 });
  const forever = jwt({ sub: `${CANARY}-forever` });
  const outputs: string[] = [];
  let upstream: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    upstream = await startUpstream({ requireAuthorization: `Bearer ${valid}` });
    proxy = await startProxy({
      grants: [
        { id: 'old', type: 'jwt', domains: ['other.example.test'], secret: expired },
        { id: 'forever', type: 'jwt', domains: ['slow.example.test'], secret: forever },
      ],
    });
  });

  afterAll(async () => {
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...outputs, ...proxy.logs])
      for (const token of [valid, expired, forever]) expect(findLeak(text, token), 'a token in an output').toBeUndefined();
    await proxy?.stop();
    await upstream?.close();
  });

  it('secrets set refuses what is not a JWT, without quoting it; grants add takes the type', async () => {
    const add = await proxy.cli(['grants', 'add', 'tok', '--type', 'jwt', '--domains', 'api.example.test']);
    outputs.push(add.stdout, add.stderr);
    expect(add.code, add.stderr).toBe(0);
    for (const [bad, why] of [
      [`${CANARY}-not-a-jwt`, /three base64url parts/],
      [`${b64url({ alg: 'none' })}.${Buffer.from(`${CANARY}-not json`).toString('base64url')}.sig`, /payload/],
      [jwt({ sub: CANARY, exp: 'tomorrow' }), /"exp" must be a number/],
    ] as const) {
      const r = await proxy.cli(['secrets', 'set', 'tok', '--stdin'], bad);
      outputs.push(r.stdout, r.stderr);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(why);
      expect(r.stderr).not.toContain(CANARY);
    }
    const set = await proxy.cli(['secrets', 'set', 'tok', '--stdin'], `${valid}\n`);
    outputs.push(set.stdout, set.stderr);
    expect(set.code, set.stderr).toBe(0);
  });

  it('a valid token goes as a bearer token (curl, Node fetch); listings show its exp', async () => {
    const url = `https://api.example.test:${upstream.port}/echo`;
    let r = await curl(['--cacert', proxy.caPath, '-x', proxy.url, '-w', '\\n%{http_code}', url], cleanEnv());
    for (let i = 0; i < 50 && !r.stdout.endsWith('\n200'); i++) {
      await new Promise((res) => setTimeout(res, 100));
      r = await curl(['--cacert', proxy.caPath, '-x', proxy.url, '-w', '\\n%{http_code}', url], cleanEnv());
    }
    outputs.push(r.stdout, r.stderr);
    expect(r.stdout).toMatch(/\n200$/);
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${valid}`);
    const node = await nodeFetch(
      url,
      cleanEnv({ NODE_USE_ENV_PROXY: '1', HTTPS_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: proxy.caPath }),
      'Bearer keyway-placeholder',
    );
    outputs.push(node.stdout, node.stderr);
    expect(JSON.parse(node.stdout).status).toBe(200);
    const list = await proxy.cli(['grants', 'list', '--json']);
    outputs.push(list.stdout);
    const rows = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
    const tok = rows.find((g) => g['id'] === 'tok')!;
    expect(Date.parse(String(tok['token_expires_at']))).toBeGreaterThan(Date.now() + 86_400_000);
    expect(tok['display_status']).toBe('active');
    // A token with no exp never expires: no expiry shown, active.
    expect(rows.find((g) => g['id'] === 'forever')).toMatchObject({ token_expires_at: null, display_status: 'active' });
    expect(rows.find((g) => g['id'] === 'old')).toMatchObject({ display_status: 'needs_reconnect' });
  });

  it('an expired token is never sent: 401 token_expired with the hint', async () => {
    const before = upstream.seen.length;
    const r = await curl(['--cacert', proxy.caPath, '-x', proxy.url, '-i', `https://other.example.test:${upstream.port}/echo`], cleanEnv());
    outputs.push(r.stdout, r.stderr);
    expect(r.stdout).toMatch(/HTTP\/[0-9.]+ 401/);
    expect(r.stdout).toMatch(/x-keyway-error: token_expired/i);
    expect(r.stdout).toContain('set a new one with keyway secrets set old');
    expect(upstream.seen.length).toBe(before);
    // The token without exp is sent (the upstream refuses it: it is not the one it takes).
    const f = await curl(['--cacert', proxy.caPath, '-x', proxy.url, '-w', '\\n%{http_code}', `https://slow.example.test:${upstream.port}/echo`], cleanEnv());
    outputs.push(f.stdout, f.stderr);
    expect(f.stdout).toMatch(/\n401$/);
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${forever}`);
  });
});
