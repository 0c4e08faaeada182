// Identity tokens as proxy passwords (config identities:): an agent signs in with a JWT its platform
// gave it. A real OpenID provider (oidc-provider) issues tokens and publishes its keys by discovery;
// tokens shaped like Kubernetes' and GitHub Actions' are signed with keys published as JWKS files.
// Driven by curl and Node's fetch; the hostile cases (another audience, expired, unsigned, HMAC keyed
// with the public key, an untrusted issuer, an unmapped identity, a rotated key, a JWKS that hangs or
// is down) each get their answer, and no token ever reaches a log or an audit line.
import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, nodeFetch, rawConnect } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { fileIssuer, ISSUER_CLIENT, startOidcIssuer, type FileIssuer, type OidcIssuer } from '../helpers/identity-issuer.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';
const SECRET = `${CANARY}-api-token`;
/** A GitHub Actions token's claims for acme/api on main: the builder agent's. */
const ACME_MAIN = {
  aud: 'https://github.com/acme',
  sub: 'repo:acme/api:ref:refs/heads/main',
  repository: 'acme/api',
  ref: 'refs/heads/main',
  repository_owner: 'acme',
} as const;
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('identities: agents sign in with a token their platform issued', () => {
  let oidc: OidcIssuer;
  let k8s: FileIssuer;
  let github: FileIssuer;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const tokens: string[] = [];
  const outputs: string[] = [];
  let url: string;
  /** keyway's clock for identity tokens runs this far ahead of the wall clock. */
  let clockOffset = 0;

  /** curl through keyway with `jwt:TOKEN` as the proxy credentials; the HTTP status (or the CONNECT's, when it was refused). */
  async function viaCurl(token: string, extra: string[] = []): Promise<number> {
    tokens.push(token);
    const r = await curl(
      ['-sS', '--cacert', proxy.caPath, '-x', proxy.url, '--proxy-user', `jwt:${token}`, ...extra, '-w', '\n%{http_connect} %{http_code}', `${url}/echo`],
      cleanEnv(),
    );
    outputs.push(r.stdout, r.stderr);
    const [connect, status] = (/(\d{3}) (\d{3})$/.exec(r.stdout) ?? []).slice(1).map(Number);
    return status === 0 ? connect! : status!;
  }

  /** A CONNECT with `jwt:TOKEN` that keyway refuses: its answer as written (status, X-Keyway-Error, body). */
  async function refused(token: string, scheme: 'basic' | 'bearer' = 'basic') {
    tokens.push(token);
    const authorization = scheme === 'bearer' ? `Bearer ${token}` : `Basic ${Buffer.from(`jwt:${token}`).toString('base64')}`;
    const answer = await rawConnect(proxy.port, `api.example.test:${upstream.port}`, [`Proxy-Authorization: ${authorization}`]);
    outputs.push(answer.body);
    return {
      status: answer.status,
      code: answer.headers.get('x-keyway-error'),
      message: (JSON.parse(answer.body) as { error: { message: string } }).error.message,
      hint: (JSON.parse(answer.body) as { error: { hint: string | null } }).error.hint,
    };
  }

  /**
   * The first audit line after the first `before` with this decision (and message, for a refusal):
   * lines are written as responses end, maybe after the client saw them, so an earlier request's may come later.
   */
  const lineAfter = (before: number, decision: string, message?: RegExp, agent?: string) =>
    waitFor(
      () =>
        proxy
          .auditLines()
          .slice(before)
          .find(
            (l) => l['decision'] === decision && (message === undefined || message.test(String(l['message']))) && (agent === undefined || l['agent'] === agent),
          ),
      `a ${decision} line`,
    );

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-identities-'));
    oidc = await startOidcIssuer();
    k8s = await fileIssuer(K8S_ISSUER, join(dir, 'k8s-jwks.json'));
    github = await fileIssuer(GITHUB_ISSUER, join(dir, 'github-jwks.json'));
    upstream = await startUpstream({ requireAuthorization: `Bearer ${SECRET}` });
    url = `https://api.example.test:${upstream.port}`;
    proxy = await startProxy({
      tokenClock: () => Date.now() + clockOffset,
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: { KEYED_AGENT_KEY: `${CANARY}-agent-key` },
      config: {
        agents: {
          workload: { grants: ['api'] },
          builder: { grants: ['api'], rules: [{ grant: 'api', methods: ['GET'] }] },
          pod: { grants: ['api'] },
          keyed: { key: 'env:KEYED_AGENT_KEY', grants: ['api'] },
        },
        identities: [
          { issuer: oidc.issuer, audience: 'https://keyway.test', map: [{ claims: { sub: ISSUER_CLIENT, team: 'agents' }, agent: 'workload' }] },
          {
            issuer: K8S_ISSUER,
            jwks: k8s.jwksPath,
            audience: ['keyway'],
            clock_skew: '0s',
            map: [{ claims: { 'kubernetes.io.namespace': 'agents', sub: 'system:serviceaccount:agents:*' }, agent: 'pod' }],
          },
          {
            issuer: GITHUB_ISSUER,
            jwks: github.jwksPath,
            audience: 'https://github.com/acme',
            map: [
              { claims: { repository: 'acme/api', ref: 'refs/heads/main' }, agent: 'builder' },
              { claims: { repository: 'acme/*' }, agent: 'ghost' },
            ],
          },
        ],
      },
    });
  });

  afterAll(async () => {
    const texts = [...outputs, ...proxy.logs, JSON.stringify(proxy.auditLines())];
    for (const text of texts) {
      expect(findLeak(text, SECRET), 'the grant secret in an output').toBeUndefined();
      for (const token of tokens) expect(text.includes(token.slice(-40)), 'an identity token in an output').toBe(false);
    }
    await proxy?.stop();
    await upstream?.close();
    await oidc?.close();
  });

  it('a token from a real OpenID provider (keys by discovery) signs in as the mapped agent: curl and Node fetch', async () => {
    const token = await oidc.mint('https://keyway.test', { team: 'agents' });
    const before = proxy.auditLines().length;
    expect(await viaCurl(token)).toBe(200);
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(await lineAfter(before, 'inject', undefined, 'workload')).toMatchObject({
      agent: 'workload',
      grant: 'api',
      decision: 'inject',
      identity: { iss: oidc.issuer, sub: ISSUER_CLIENT },
    });

    const proxyUrl = `http://jwt:${token}@127.0.0.1:${proxy.port}`;
    const node = await nodeFetch(`${url}/echo`, cleanEnv({ NODE_USE_ENV_PROXY: '1', HTTPS_PROXY: proxyUrl, NODE_EXTRA_CA_CERTS: proxy.caPath }));
    outputs.push(node.stdout, node.stderr);
    expect(JSON.parse(node.stdout).status, node.stderr).toBe(200);
    // Checked once: the second connection with the same token used the keys already held.
    expect(oidc.jwksRequests).toBe(1);
  });

  it('Bearer TOKEN works as the Proxy-Authorization too', async () => {
    const token = await oidc.mint('https://keyway.test', { team: 'agents' });
    tokens.push(token);
    const socket = await openTunnel(proxy.port, `api.example.test:${upstream.port}`, `Bearer ${token}`);
    expect(await requestOver(socket, upstream.port, proxy.caPath)).toMatch(/^HTTP\/1\.1 200/);
    const wrong = await refused(await oidc.mint('https://other.test', { team: 'agents' }), 'bearer');
    expect(wrong).toMatchObject({ status: 407, code: 'proxy_auth_required' });
  });

  it('a token for another audience, or whose claims no rule maps, is a 407 with its reason, audited', async () => {
    let before = proxy.auditLines().length;
    const otherAudience = await refused(await oidc.mint('https://other.test', { team: 'agents' }));
    expect(otherAudience).toMatchObject({ status: 407, code: 'proxy_auth_required', message: expect.stringMatching(/another audience/) });
    expect(await lineAfter(before, 'deny', /another audience/)).toMatchObject({
      decision: 'deny',
      code: 'proxy_auth_required',
      agent: null,
      method: 'CONNECT',
    });

    before = proxy.auditLines().length;
    const unmapped = await refused(await oidc.mint('https://keyway.test', { team: 'outsiders' }));
    expect(unmapped).toMatchObject({ status: 407, message: expect.stringMatching(/no identities rule/) });
    // The identity proved is on the line: what the operator needs to write a rule for it.
    expect(await lineAfter(before, 'deny', /no identities rule/)).toMatchObject({
      code: 'proxy_auth_required',
      agent: null,
      identity: { iss: oidc.issuer, sub: ISSUER_CLIENT },
    });
  });

  it('a Kubernetes service-account token maps by namespace (a nested claim) and subject glob', async () => {
    const claims = {
      aud: ['keyway'],
      sub: 'system:serviceaccount:agents:summariser',
      'kubernetes.io': { namespace: 'agents', serviceaccount: { name: 'summariser', uid: 'b6f1' }, pod: { name: 'summariser-7d9', uid: '11aa' } },
    };
    const before = proxy.auditLines().length;
    expect(await viaCurl(await k8s.sign(claims))).toBe(200);
    expect(await lineAfter(before, 'inject', undefined, 'pod')).toMatchObject({
      agent: 'pod',
      identity: { iss: K8S_ISSUER, sub: 'system:serviceaccount:agents:summariser' },
    });
    const otherNamespace = await refused(await k8s.sign({ ...claims, 'kubernetes.io': { namespace: 'default' }, sub: 'system:serviceaccount:default:x' }));
    expect(otherNamespace.message).toMatch(/no identities rule/);
    // clock_skew 0s: a token past its exp by a second is refused.
    const now = Math.floor(Date.now() / 1000);
    const beforeExpired = proxy.auditLines().length;
    const expired = await refused(await k8s.sign({ ...claims, iat: now - 600, exp: now - 1 }));
    expect(expired.message).toMatch(/expired/);
    // Its signature held: the 407 says what to do, and the line names who it was (issue 48).
    expect(expired.hint).toBe('get a fresh token from its issuer');
    expect(await lineAfter(beforeExpired, 'deny', /expired/)).toMatchObject({ identity: { iss: K8S_ISSUER, sub: 'system:serviceaccount:agents:summariser' } });
    // No exp at all: a token good forever is not taken.
    expect((await refused(await k8s.sign({ ...claims, exp: undefined }))).message).toMatch(/exp claim is missing/);
  });

  it('a token issued in the future, one that lives too long, or whose sub is a list is refused (a 407 with its reason)', async () => {
    const claims = { aud: ['keyway'], sub: 'system:serviceaccount:agents:summariser', 'kubernetes.io': { namespace: 'agents' } };
    const now = Math.floor(Date.now() / 1000);
    // A sign-in that works clears the address's failures, so the refusals below are not throttled.
    const signInWorks = async () => expect(await viaCurl(await k8s.sign(claims))).toBe(200);
    // The Kubernetes issuer has clock_skew 0s: an iat two minutes ahead of keyway's clock is refused.
    const future = await refused(await k8s.sign({ ...claims, iat: now + 120, exp: now + 600 }));
    expect(future).toMatchObject({ status: 407, code: 'proxy_auth_required', message: expect.stringMatching(/iat is in the future/) });
    // The GitHub issuer keeps the default 60 s of skew: 120 s ahead is still beyond it.
    const gh = { aud: 'https://github.com/acme', sub: 'repo:acme/api:ref:refs/heads/main', repository: 'acme/api', ref: 'refs/heads/main' };
    expect((await refused(await github.sign({ ...gh, iat: now + 120, exp: now + 600 }))).message).toMatch(/iat is in the future/);
    await signInWorks();
    // No lifetime cap was a key that never runs out: exp in the year 3000, and 25 h against the default 24 h.
    const y3000 = Math.floor(Date.UTC(3000, 0, 1) / 1000);
    expect((await refused(await k8s.sign({ ...claims, iat: now, exp: y3000 }))).message).toMatch(/lives longer than .*max_token_lifetime/);
    expect((await refused(await k8s.sign({ ...claims, iat: now, exp: now + 25 * 3600 }))).message).toMatch(/max_token_lifetime/);
    await signInWorks();
    // Without iat, what is left of it (exp - now) is held to the cap; a short one without iat passes.
    expect((await refused(await k8s.sign({ ...claims, iat: undefined, exp: now + 25 * 3600 }))).message).toMatch(/it has no iat/);
    expect(await viaCurl(await k8s.sign({ ...claims, iat: undefined, exp: now + 600 }))).toBe(200);
    // A sub that is a list would match a sub rule by any one element.
    const list = await refused(await k8s.sign({ ...claims, sub: ['system:serviceaccount:agents:summariser', 'someone-else'] }));
    expect(list).toMatchObject({ status: 407, message: expect.stringMatching(/sub claim is not a string/) });
  });

  it("a GitHub Actions token maps by repository and ref; the agent's rules still apply", async () => {
    const claims = ACME_MAIN;
    const token = await github.sign(claims);
    const before = proxy.auditLines().length;
    expect(await viaCurl(token)).toBe(200);
    expect(await lineAfter(before, 'inject', undefined, 'builder')).toMatchObject({
      agent: 'builder',
      identity: { iss: GITHUB_ISSUER, sub: 'repo:acme/api:ref:refs/heads/main' },
    });
    // builder may GET only.
    expect(await viaCurl(token, ['-X', 'POST', '-d', 'x'])).toBe(403);
    // An org whose name starts with the org's is not the org.
    const lookalike = await refused(await github.sign({ ...claims, repository: 'acme-evil/api', sub: 'repo:acme-evil/api:ref:refs/heads/main' }));
    expect(lookalike.message).toMatch(/no identities rule/);
    // A rule that names an agent keyway does not have refuses, and says so.
    const ghost = await refused(await github.sign({ ...claims, repository: 'acme/web', sub: 'repo:acme/web:ref:refs/heads/main' }));
    expect(ghost.message).toMatch(/agent "ghost", which does not exist/);
  });

  it('keyway env, fetch and doctor take --identity-token FILE in place of --agent (issue 48)', async () => {
    const claims = ACME_MAIN;
    const token = await github.sign(claims);
    tokens.push(token);
    const file = join(mkdtempSync(join(tmpdir(), 'keyway-token-')), 'token.jwt');
    writeFileSync(file, `${token}\n`);
    const env = await proxy.cli(['env', '--json', '--identity-token', file]);
    expect(env.code, env.stderr).toBe(0);
    const proxyUrl = new URL((JSON.parse(env.stdout) as Record<string, string>)['HTTPS_PROXY']!);
    expect(proxyUrl.username).toBe('jwt');
    // env prints it, on purpose (as it prints an agent's key): fetch's and doctor's output must not.
    expect(decodeURIComponent(proxyUrl.password)).toBe(token);
    // The request goes as the agent the token maps to: builder, injected.
    const before = proxy.auditLines().length;
    const fetched = await proxy.cli(['fetch', '--identity-token', file, `${url}/v1/by-token`]);
    outputs.push(fetched.stdout, fetched.stderr);
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(await lineAfter(before, 'inject', undefined, 'builder')).toMatchObject({ agent: 'builder', path: '/v1/by-token' });
    // Both ways at once, or a file that is no JWT: one line, before anything is sent.
    const both = await proxy.cli(['env', '--agent', 'builder', '--identity-token', file]);
    expect(both.stderr).toContain('--identity-token or --agent, not both');
    writeFileSync(file, 'not-a-token\n');
    const bad = await proxy.cli(['env', '--identity-token', file]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('not a JWT');
  });

  it('forged tokens are refused: unsigned (alg none), HMAC keyed with the public key, a made-up issuer, another issuer key, a changed payload', async () => {
    const claims = {
      iss: GITHUB_ISSUER,
      aud: 'https://github.com/acme',
      sub: 'repo:acme/api:ref:refs/heads/main',
      repository: 'acme/api',
      ref: 'refs/heads/main',
      exp: Math.floor(Date.now() / 1000) + 600,
    };
    const unsigned = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`;
    expect((await refused(unsigned)).message).toMatch(/algorithm is not accepted/);
    // The classic confusion: HS256 whose secret is the issuer's public key, which anyone can fetch.
    const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}`;
    const hmac = `${head}.${createHmac('sha256', github.publicPem).update(head).digest('base64url')}`;
    expect((await refused(hmac)).message).toMatch(/algorithm is not accepted/);
    // A sign-in that works clears the address's failures (five in a row would be throttled).
    const good = await github.sign(claims);
    expect(await viaCurl(good)).toBe(200);
    // Signed by the Kubernetes key but claiming to be GitHub's.
    expect((await refused(await k8s.sign(claims))).message).toMatch(/names no key|signature does not verify/);
    expect((await refused(await k8s.sign({ ...claims, iss: 'https://evil.example' }))).message).toMatch(/issuer https:\/\/evil\.example is not in identities/);
    // A changed payload under the original signature.
    const [h, , sig] = good.split('.');
    const tampered = `${h}.${b64url({ ...claims, ref: 'refs/heads/release' })}.${sig}`;
    expect((await refused(tampered)).message).toMatch(/signature does not verify/);
    // Not a JWT at all.
    expect((await refused(`${CANARY}-not-a-token`)).message).toMatch(/not a JWT/);
    // The same good token is still taken after all that (it was never the token's fault).
    expect(await viaCurl(good)).toBe(200);
  });

  it("an agent with no key cannot be reached by a key; a keyed agent's key still works beside tokens", async () => {
    // Not even with the hash keyway compares a keyless agent against (for timing) as its "key".
    for (const key of ['', '\u0000no-such-agent', 'anything']) {
      const keyless = await rawConnect(proxy.port, `api.example.test:${upstream.port}`, [
        `Proxy-Authorization: Basic ${Buffer.from(`workload:${key}`).toString('base64')}`,
      ]);
      expect(keyless.status, JSON.stringify(key)).toBe(407);
    }
    const keyed = await curl(
      ['-sS', '--cacert', proxy.caPath, '-x', proxy.url, '--proxy-user', `keyed:${CANARY}-agent-key`, '-w', '\n%{http_code}', `${url}/echo`],
      cleanEnv(),
    );
    outputs.push(keyed.stdout, keyed.stderr);
    expect(keyed.stdout).toMatch(/\n200$/);
  });

  it('a rotated key: the first token signed with the new key makes keyway fetch the keys again', async () => {
    const before = oidc.jwksRequests;
    await oidc.rotate();
    // Past the cooldown since the last fetch (keyway's clock, moved rather than waited for).
    clockOffset += 31_000;
    const fresh = await oidc.mint('https://keyway.test', { team: 'agents' });
    expect(await viaCurl(fresh)).toBe(200);
    expect(oidc.jwksRequests).toBe(before + 1);
    // A made-up kid right after costs no fetch (the cooldown), and is refused.
    const [, payload] = fresh.split('.');
    const madeUp = `${b64url({ alg: 'ES256', kid: 'nobody', typ: 'at+jwt' })}.${payload}.${Buffer.alloc(64).toString('base64url')}`;
    expect((await refused(madeUp)).message).toMatch(/names no key/);
    expect(oidc.jwksRequests).toBe(before + 1);
    clockOffset = 0;
  });

  it("failed sign-ins are throttled, but never lock out another agent's good token, fresh or not", async () => {
    const good = await oidc.mint('https://keyway.test', { team: 'agents' });
    expect(await viaCurl(good)).toBe(200);
    const bad = await oidc.mint('https://other.test', { team: 'agents' });
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await refused(bad)).status);
    expect(statuses).toEqual([407, 407, 407, 407, 407, 429, 429]);
    // From the same address (loopback clients share one): a token never seen, then one seen before.
    expect(await viaCurl(await oidc.mint('https://keyway.test', { team: 'agents' }))).toBe(200);
    expect(await viaCurl(good)).toBe(200);
  });

  it('a connection outlives its token only until the token expires: intercepted or blind, it is closed then', async () => {
    const claims = { aud: 'keyway', sub: 'system:serviceaccount:agents:short', 'kubernetes.io': { namespace: 'agents' } };
    const now = Math.floor(Date.now() / 1000);
    const token = await k8s.sign({ ...claims, iat: now, exp: now + 2 });
    tokens.push(token);
    const authorization = `Basic ${Buffer.from(`jwt:${token}`).toString('base64')}`;
    const socket = await openTunnel(proxy.port, `api.example.test:${upstream.port}`, authorization);
    const tls = await tlsOver(socket, proxy.caPath);
    expect(await exchange(tls, upstream.port, false)).toMatch(/^HTTP\/1\.1 200/);
    // A blind tunnel (no grant covers tunnel.example.test), kept open by nobody speaking.
    const blind = await openTunnel(proxy.port, `tunnel.example.test:${upstream.port}`, authorization);
    const closed = (s: Socket) => new Promise<number>((resolve) => s.once('close', () => resolve(Date.now())));
    const [interceptedAt, blindAt] = await Promise.all([closed(tls), closed(blind)]);
    // Closed by keyway at the token's exp (clock_skew 0s here), not before.
    for (const at of [interceptedAt, blindAt]) expect(at).toBeGreaterThanOrEqual((now + 2) * 1000 - 50);
  });
});

describe('identities: an issuer whose keys cannot be had', () => {
  let oidc: OidcIssuer;
  let proxy: TestProxy;
  let upstream: TestUpstream;
  /** keyway's clock for identity tokens, moved past the 30 s between fetches rather than waited for. */
  let ahead = 0;

  beforeAll(async () => {
    oidc = await startOidcIssuer();
    upstream = await startUpstream();
    proxy = await startProxy({
      tokenClock: () => Date.now() + ahead,
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      config: {
        agents: { workload: {} },
        identities: [{ issuer: oidc.issuer, audience: 'https://keyway.test', map: [{ claims: { sub: '*' }, agent: 'workload' }] }],
      },
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
    await oidc?.close();
  });

  it('a JWKS that hangs, is down or answers garbage: 503 identity_unavailable, not a failed sign-in; then it recovers', async () => {
    const token = await oidc.mint('https://keyway.test');
    const authorization = `Bearer ${token}`;
    oidc.jwksMode = 'slow';
    const started = performance.now();
    const slow = await rawConnect(proxy.port, `api.example.test:${upstream.port}`, [`Proxy-Authorization: ${authorization}`], 15_000);
    expect(slow.status).toBe(503);
    expect(slow.headers.get('x-keyway-error')).toBe('identity_unavailable');
    expect(slow.body).toMatch(/did not answer within 5 s/);
    expect(performance.now() - started).toBeLessThan(12_000);
    // Within 30 s of a failed fetch, no new fetch: the same failure, at once.
    const fetches = oidc.jwksRequests;
    const again = await rawConnect(proxy.port, `api.example.test:${upstream.port}`, [`Proxy-Authorization: ${authorization}`]);
    expect(again.status).toBe(503);
    expect(again.body).toMatch(/did not answer within 5 s \(the next try is 30 s after the last\)/);
    expect(oidc.jwksRequests).toBe(fetches);
    for (const mode of ['down', 'garbage'] as const) {
      oidc.jwksMode = mode;
      ahead += 31_000;
      const answer = await rawConnect(proxy.port, `api.example.test:${upstream.port}`, [`Proxy-Authorization: ${authorization}`]);
      expect(answer.status, mode).toBe(503);
      expect(answer.body).toMatch(mode === 'down' ? /could not be reached/ : /not a JSON object/);
    }
    const line = await waitFor(() => proxy.auditLines().find((l) => l['code'] === 'identity_unavailable'), 'the identity_unavailable line');
    expect(line).toMatchObject({ decision: 'error', status: 503, agent: null });
    // Not counted as failed sign-ins: the same address is not throttled for them.
    oidc.jwksMode = 'normal';
    ahead += 31_000;
    const tunnel = await openTunnel(proxy.port, `api.example.test:${upstream.port}`, authorization);
    tunnel.destroy();
    for (const text of [...proxy.logs, JSON.stringify(proxy.auditLines())]) expect(text.includes(token.slice(-40))).toBe(false);
  });
});

describe("identities: an issuer whose keys would be fetched from keyway's own admin port", () => {
  let proxy: TestProxy;
  let forged: FileIssuer;
  let adminPort: number;
  const FAKE_ISSUER = 'https://issuer.example.test';

  beforeAll(async () => {
    // The admin port is named before start, so the config can point an issuer's keys at it
    // (loopback is in the tests' allow_networks, as it would be for a local issuer).
    adminPort = await freePort();
    forged = await fileIssuer(FAKE_ISSUER, join(mkdtempSync(join(tmpdir(), 'keyway-identities-own-')), 'unused-jwks.json'));
    proxy = await startProxy({
      config: {
        admin: { listen: `127.0.0.1:${adminPort}` },
        agents: { workload: {} },
        identities: [
          // keys by URL, and by discovery (the issuer's document is fetched from the admin port)
          { issuer: FAKE_ISSUER, jwks: `http://127.0.0.1:${adminPort}/api/status`, audience: 'keyway', map: [{ claims: { sub: '*' }, agent: 'workload' }] },
          { issuer: `http://127.0.0.1:${adminPort}`, audience: 'keyway', map: [{ claims: { sub: '*' }, agent: 'workload' }] },
        ],
      },
    });
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  it('is refused as any destination on an own listener: the fetch is never made, and the answer carries nothing of the admin API', async () => {
    for (const iss of [FAKE_ISSUER, `http://127.0.0.1:${adminPort}`]) {
      const token = await forged.sign({ iss, aud: 'keyway', sub: 'anyone' });
      const answer = await rawConnect(proxy.port, 'api.example.test:443', [`Proxy-Authorization: Bearer ${token}`]);
      expect(answer.status, iss).toBe(503);
      expect(answer.headers.get('x-keyway-error')).toBe('identity_unavailable');
      const { message } = (JSON.parse(answer.body) as { error: { message: string } }).error;
      expect(message, iss).toMatch(/keyway's own listener/);
      // Nothing the admin port said (its status) reaches the agent.
      expect(message, iss).not.toMatch(/answered|\b40[134]\b|\b200\b/);
    }
  });
});

async function openTunnel(port: number, authority: string, authorization: string): Promise<Socket> {
  const socket = netConnect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('connect', () => socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: ${authorization}\r\n\r\n`));
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (/^HTTP\/1\.1 200/.test(head)) resolve();
      else reject(new Error(head.split('\r\n')[0]));
    };
    socket.on('data', onData);
  });
  return socket;
}

async function tlsOver(socket: Socket, caPath: string): Promise<TLSSocket> {
  const tls = tlsConnect({ socket, servername: 'api.example.test', ca: readFileSync(caPath) });
  await once(tls, 'secureConnect');
  return tls;
}

/** One HTTP/1.1 GET on a kept-alive TLS connection: the response head and body as text (the last one closes). */
async function exchange(tls: TLSSocket, port: number, last: boolean): Promise<string> {
  tls.write(`GET /echo HTTP/1.1\r\nHost: api.example.test:${port}\r\n${last ? 'Connection: close\r\n' : ''}\r\n`);
  let text = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? -1);
      if (split !== -1 && length >= 0 && Buffer.byteLength(text) >= split + 4 + length) {
        tls.off('data', onData);
        resolve(text);
      }
    };
    tls.on('data', onData);
    tls.once('error', reject);
    tls.once('end', () => resolve(text));
  });
}

async function requestOver(socket: Socket, port: number, caPath: string): Promise<string> {
  return exchange(await tlsOver(socket, caPath), port, true);
}
