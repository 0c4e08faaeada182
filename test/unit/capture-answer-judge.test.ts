import { describe, expect, it } from 'vitest';
import { readAnswer } from '../../src/capture/core/answer-body.ts';
import { judgeOtherBody, judgeWatchedBody } from '../../src/capture/core/answer-judge.ts';
import { challengeItems, isRefusal, judgeOtherHead, judgeWatchedHead } from '../../src/capture/core/answer-head.ts';
import { decodeReferences, htmlFields } from '../../src/capture/core/html-fields.ts';
import { compileCapture, resolvesAt } from '../../src/capture/core/settings.ts';
import { looksLikeCredential } from '../../src/capture/core/token-shape.ts';

// The judge of a login host's answers (capture/core/answer-judge.ts): what it admits at a
// watched endpoint, by default deny, and what it refuses elsewhere, by name. Real token answers of
// the providers keyway is used with are admitted; every shape the outside test found a token in is not.

const TOKEN = 'REALtoken0123456789abcdefABCDEF';
const settings = compileCapture({ endpoints: [{ host: 'login.example.test', path: '/token' }] });
const read = (body: unknown) => {
  const answer = readAnswer(Buffer.from(JSON.stringify(body)), 'application/json');
  if (answer.format === 'unreadable') throw new Error(answer.reason);
  return answer;
};
const watched = (body: unknown, s = settings) => judgeWatchedBody(read(body), s, true);

describe('a watched endpoint: default deny', () => {
  it('admits real token answers (oidc-provider, Google, GitHub, Entra, Keycloak, Slack with its nested token named)', () => {
    expect(
      watched({ access_token: TOKEN, refresh_token: TOKEN, id_token: TOKEN, token_type: 'Bearer', expires_in: 3600, scope: 'openid profile' }),
    ).toBeUndefined();
    expect(watched({ access_token: TOKEN, expires_in: 3599, refresh_token_expires_in: 15897599, scope: 'repo gist', token_type: 'bearer' })).toBeUndefined();
    expect(
      watched({
        token_type: 'Bearer',
        scope: 'User.Read',
        expires_in: 4709,
        ext_expires_in: 4709,
        access_token: TOKEN,
        client_info: 'eyJ1aWQiOiIxMjM0NTY3OC05YWJjLWRlZiIsInV0aWQiOiJhYmMifQ',
        foci: '1',
      }),
    ).toBeUndefined();
    expect(
      watched({
        access_token: TOKEN,
        expires_in: 300,
        refresh_expires_in: 1800,
        refresh_token: TOKEN,
        token_type: 'Bearer',
        'not-before-policy': 0,
        session_state: '3f1b2c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d',
        scope: 'email profile',
      }),
    ).toBeUndefined();
    const slack = compileCapture({ endpoints: [{ host: 'slack.com', path: '/api/oauth.v2.access' }], fields: ['access_token', 'authed_user.access_token'] });
    expect(
      watched(
        {
          ok: true,
          app_id: 'A0KRD7HC3',
          authed_user: { id: 'U1234', scope: 'chat:write', access_token: TOKEN, token_type: 'user' },
          access_token: TOKEN,
          token_type: 'bot',
          team: { id: 'T9TK3CUKW', name: 'Slack Softball Team' },
        },
        slack,
      ),
    ).toBeUndefined();
  });

  it('refuses a credential-shaped value under any name the grant neither captures nor passes, at any depth, and a token field that is no string', () => {
    for (const body of [
      { token: TOKEN },
      { accessToken: TOKEN },
      { data: { session: { key: TOKEN } } },
      { access_token: [TOKEN] },
      { access_token: { value: TOKEN } },
      { list: [{ x: TOKEN }] },
    ]) {
      const found = watched(body);
      expect(found, JSON.stringify(body)).toBeDefined();
      expect(found!.reason).not.toContain(TOKEN);
    }
    // Past the depth limit the answer is unreadable, never passed.
    let deep: Record<string, unknown> = { access_token: TOKEN };
    for (let i = 0; i < 20; i++) deep = { level: deep };
    expect(watched(deep)?.unreadable).toBe(true);
    // Listed in pass, it goes as it came.
    const passing = compileCapture({ endpoints: [{ host: 'login.example.test', path: '/token' }], pass: { fields: ['data.session.key'] } });
    expect(watched({ data: { session: { key: TOKEN } } }, passing)).toBeUndefined();
  });

  it('judges headers, cookies, a Location and trailers: a token in any of them refuses the answer unless captured or passed', () => {
    const head = (h: Record<string, unknown>, s = settings) => judgeWatchedHead(h, s, true);
    expect(
      isRefusal(
        head({
          'content-type': 'application/json',
          date: 'Thu, 26 Nov 2026 10:00:00 GMT',
          'x-request-id': 'req-0123456789abcdef0123',
          etag: 'W/"0123456789abcdef0123"',
        }),
      ),
    ).toBe(false);
    expect(isRefusal(head({ 'x-subject-token': TOKEN }))).toBe(true);
    expect(isRefusal(head({ authorization: `Bearer ${TOKEN}` }))).toBe(true);
    expect(isRefusal(head({ 'set-cookie': [`session=${TOKEN}; HttpOnly`] }))).toBe(true);
    expect(isRefusal(head({ 'set-cookie': [`fpc=${TOKEN}; HttpOnly`, 'theme=dark'] }))).toBe(false);
    expect(isRefusal(head({ location: `https://app.example.test/cb#access%5Ftoken=${TOKEN}` }))).toBe(true);
    expect(isRefusal(judgeWatchedHead({ 'x-token': TOKEN }, settings, false, 'trailer'))).toBe(true);
    const capturing = compileCapture({ endpoints: [{ host: 'login.example.test', path: '/token' }], headers: ['X-Subject-Token'] });
    expect(head({ 'x-subject-token': TOKEN }, capturing)).toEqual({ capturedHeaders: ['x-subject-token'] });
  });
});

describe('another path of a login host: a token by its name', () => {
  it('admits discovery and keys; refuses a token-named member, a JWT carrying one (JARM), a token-named header, a decoded Location', () => {
    const names = new Set(['access_token', 'refresh_token', 'id_token']);
    expect(
      judgeOtherBody(
        read({ issuer: 'https://login.example.test', token_endpoint: 'https://login.example.test/token', id_token_signing_alg_values_supported: ['RS256'] }),
        names,
      ),
    ).toBeUndefined();
    expect(judgeOtherBody(read({ keys: [{ kty: 'RSA', n: 'x'.repeat(342), e: 'AQAB', kid: 'k1' }] }), names)).toBeUndefined();
    expect(judgeOtherBody(read({ user: { sessionToken: TOKEN } }), names)).toBeDefined();
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const jarm = `${b64({ alg: 'HS256' })}.${b64({ access_token: TOKEN, iss: 'x' })}.c2ln`;
    expect(judgeOtherBody(read({ response: jarm }), names)).toBeDefined();
    expect(judgeOtherHead({ 'x-subject-token': TOKEN }, settings, names)).toBeDefined();
    expect(judgeOtherHead({ location: `https://app.example.test/cb?response=${jarm}` }, settings, names)).toBeDefined();
    expect(judgeOtherHead({ location: `https://app.example.test/cb#access%5Ftoken=${TOKEN}` }, settings, names)).toBeDefined();
    expect(judgeOtherHead({ location: 'https://app.example.test/cb?code=abc&state=xyz' }, settings, names)).toBeUndefined();
  });
});

describe('what looks like a credential', () => {
  it('a run of 16 characters or more without whitespace; prose and short values do not', () => {
    expect(looksLikeCredential(TOKEN)).toBe(true);
    expect(looksLikeCredential(`Bearer ${TOKEN}`)).toBe(true);
    expect(looksLikeCredential('Bearer')).toBe(false);
    expect(looksLikeCredential('The refresh token has expired, sign in again')).toBe(false);
  });
});

describe('where a captured token resolves', () => {
  const target = (host: string, path: string) => ({ host, port: 443, path });
  const s = compileCapture({ endpoints: [{ host: 'login.example.test', path: '/token' }] });
  it('by default: an access token in Authorization anywhere the grant covers; the ID token as id_token_hint on a login host; the refresh token nowhere here', () => {
    expect(resolvesAt(s, 'access_token', { in: 'header', name: 'Authorization' }, target('api.example.test', '/v1/me'))).toBe(true);
    expect(resolvesAt(s, 'access_token', { in: 'body', name: 'token' }, target('api.example.test', '/v1/me'))).toBe(false);
    expect(resolvesAt(s, 'refresh_token', { in: 'header', name: 'authorization' }, target('api.example.test', '/'))).toBe(false);
    expect(resolvesAt(s, 'id_token', { in: 'header', name: 'authorization' }, target('api.example.test', '/'))).toBe(false);
    expect(resolvesAt(s, 'id_token', { in: 'query', name: 'id_token_hint' }, target('login.example.test', '/logout'))).toBe(true);
    expect(resolvesAt(s, 'id_token', { in: 'query', name: 'id_token_hint' }, target('api.example.test', '/logout'))).toBe(false);
  });
  it('as declared: host, path prefix and fields', () => {
    const declared = compileCapture({
      endpoints: [{ host: 'login.example.test', path: '/token' }],
      resolve: [{ in: 'body', name: 'token', host: 'api.example.test', path: '/graphql*', fields: ['access_token'] }],
    });
    expect(resolvesAt(declared, 'access_token', { in: 'body', name: 'token' }, target('api.example.test', '/graphql/v2'))).toBe(true);
    expect(resolvesAt(declared, 'access_token', { in: 'body', name: 'token' }, target('other.example.test', '/graphql'))).toBe(false);
    expect(resolvesAt(declared, 'access_token', { in: 'header', name: 'authorization' }, target('api.example.test', '/graphql'))).toBe(false);
    expect(resolvesAt(declared, 'id_token', { in: 'body', name: 'token' }, target('api.example.test', '/graphql'))).toBe(false);
  });
});

describe('every path of a login host: the head, default deny (issue 85)', () => {
  const names = new Set(['access_token', 'refresh_token', 'id_token']);
  const other = (h: Record<string, unknown>, s = settings) => judgeOtherHead(h, s, names);

  it('refuses a token in a cookie of any name, in a challenge parameter or token68, or in a header nobody listed', () => {
    expect(other({ 'set-cookie': [`refresh_token=${TOKEN}; Path=/; HttpOnly; Secure`] })?.reason).toContain('"refresh_token"');
    expect(other({ 'set-cookie': ['theme=dark', `sid=${encodeURIComponent(TOKEN)}`] })).toBeDefined();
    expect(other({ 'www-authenticate': `Bearer realm="login", error="invalid_token", access_token="${TOKEN}"` })?.reason).toContain('"access_token"');
    expect(other({ 'www-authenticate': `Bearer realm="login", access_token=${TOKEN}` })).toBeDefined();
    expect(other({ 'www-authenticate': `Negotiate ${Buffer.from(TOKEN).toString('base64')}` })).toBeDefined();
    expect(other({ 'authentication-info': `nextnonce="abc", x="${TOKEN}"` })).toBeDefined();
    expect(other({ 'x-debug-session': TOKEN })?.reason).toContain('capture.pass.headers');
    expect(other({ link: `<https://login.example.test/cb?access_token=${TOKEN}>; rel="next"` })).toBeDefined();
    expect(other({ 'content-location': `/cb#id_token=${TOKEN}` })).toBeDefined();
  });

  it('admits what describes the message, a challenge’s own parameters, a cookie or header the grant passes, and short values', () => {
    expect(
      other({
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': "default-src 'self'; script-src 'nonce-0123456789abcdef0123'",
        'x-request-id': 'req-0123456789abcdef0123',
        'dpop-nonce': 'eyJ7S_zG.eyJH0-Z.HX4w-7v',
        'set-cookie': ['theme=dark; Path=/', `__cf_bm=${TOKEN}; HttpOnly`],
        'www-authenticate': [
          'Bearer realm="login.example.test", error="invalid_token", error_description="The access token expired at 10:00, ask for another one"',
          'DPoP algs="ES256 PS256", resource_metadata="https://login.example.test/.well-known/oauth-protected-resource"',
          `Digest realm="x", nonce="${TOKEN}", opaque="${TOKEN}", qop="auth"`,
        ],
        location: 'https://app.example.test/cb?code=abc&state=xyz',
        link: '<https://login.example.test/.well-known/openid-configuration>; rel="describedby"',
        'x-frame-options': 'DENY',
        'x-short': 'ok',
      }),
    ).toBeUndefined();
    const passing = compileCapture({ endpoints: [{ host: 'login.example.test', path: '/token' }], pass: { headers: ['X-Debug-Session'], cookies: ['sid'] } });
    expect(other({ 'x-debug-session': TOKEN, 'set-cookie': [`sid=${TOKEN}`] }, passing)).toBeUndefined();
    // A challenge parameter that is a URL is read as a redirect is.
    expect(other({ 'www-authenticate': `Bearer resource_metadata="https://login.example.test/m?access_token=${TOKEN}"` })).toBeDefined();
  });

  it('a challenge read item by item: parameters, quoted strings with escapes, a token68 with its padding', () => {
    expect(challengeItems('Bearer realm="a \\"b\\"", error=invalid_token, Negotiate YIIB==, Basic')).toEqual([
      { param: undefined, value: 'Bearer' },
      { param: 'realm', value: 'a "b"' },
      { param: 'error', value: 'invalid_token' },
      { param: undefined, value: 'Negotiate' },
      { param: undefined, value: 'YIIB==' },
      { param: undefined, value: 'Basic' },
    ]);
  });
});

describe('an HTML page’s fields, as a browser reads them', () => {
  it('reads inputs, buttons, textareas, options and meta, with references decoded and either quotes or none', () => {
    const page = `<form method="POST" action="https://app.example.test/cb">
      <INPUT type=hidden NAME=access&#95;token VALUE="${TOKEN}">
      <input type='hidden' name='id&lowbar;token' value='a&amp;b'>
      <input name="state" value="s1" name="ignored"><button name="go" value="1">Go</button>
      <textarea name="note">x &#x41; y</textarea><meta name="csrf-token" content="c1"></form>`;
    expect(htmlFields(page)).toEqual([
      { name: 'access_token', value: TOKEN },
      { name: 'id_token', value: 'a&b' },
      { name: 'state', value: 's1' },
      { name: 'go', value: '1' },
      { name: 'note', value: 'x A y' },
      { name: 'csrf-token', value: 'c1' },
    ]);
    expect(decodeReferences('&copy; &#0; &unknownref;')).toBe('&copy; \ufffd &unknownref;');
  });
});
