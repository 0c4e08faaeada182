// The dashboard's way in, driven with plain fetch against a running keyway: sign-in with the admin
// token gives an HttpOnly, SameSite=Strict session cookie; the cookie works for reads, but a write
// made with it needs the session's CSRF token; wrong tokens are limited per client; sign-out ends
// the session on the server. Every admin answer carries the CSP and the other security headers.
import { join } from 'node:path';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { curl } from '../helpers/clients.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { slack } from '../helpers/load.ts';

interface SignedIn {
  cookie: string;
  setCookie: string;
  csrf: string;
}

describe('dashboard session, CSRF and headers', () => {
  let proxy: TestProxy;
  let upstream: TestUpstream;
  let admin: AdminClient;
  const answers: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({ grants: [{ id: 'github', type: 'bearer', domains: ['api.example.test'], secret: CANARY }] });
    admin = adminClient(proxy);
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  async function call(method: string, path: string, headers: Record<string, string> = {}, body?: unknown) {
    const res = await fetch(`${admin.base}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(slack(10_000)),
    });
    const text = await res.text();
    answers.push(text, JSON.stringify([...res.headers]));
    return { status: res.status, headers: res.headers, text, json: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  }

  async function signIn(): Promise<SignedIn> {
    const res = await call('POST', '/api/session', {}, { token: admin.token });
    expect(res.status, res.text).toBe(200);
    const setCookie = res.headers.get('set-cookie') ?? '';
    const cookie = setCookie.split(';')[0] ?? '';
    return { cookie, setCookie, csrf: String(res.json?.['csrf']) };
  }

  it('signs in with the admin token: an opaque HttpOnly, SameSite=Strict cookie, and a CSRF token', async () => {
    const session = await signIn();
    expect(session.setCookie).toMatch(/^keyway_session=[A-Za-z0-9_-]{43}; /);
    const attributes = session.setCookie.split(';').map((a) => a.trim().toLowerCase());
    expect(attributes).toEqual(expect.arrayContaining(['httponly', 'samesite=strict', 'path=/']));
    expect(session.setCookie).not.toContain(admin.token);
    expect(session.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const me = await call('GET', '/api/session', { cookie: session.cookie, 'x-keyway-csrf': session.csrf });
    expect(me.json).toMatchObject({ signed_in: true });
    // The CSRF token is given out once, at sign-in: never for a cookie.
    expect(me.text).not.toContain(session.csrf);
    const grants = await call('GET', '/api/grants', { cookie: session.cookie, 'x-keyway-csrf': session.csrf });
    expect(grants.status).toBe(200);
  });

  it('refuses a wrong token, a missing one, and a made-up or foreign cookie', async () => {
    expect((await call('POST', '/api/session', {}, { token: 'not-the-token' })).status).toBe(401);
    expect((await call('POST', '/api/session', {}, {})).status).toBe(400);
    expect((await call('GET', '/api/grants', { cookie: `keyway_session=${'A'.repeat(43)}` })).status).toBe(401);
    // The page asks on load whether it has a session: "no" is an answer, and carries nothing but
    // where the token is, for the sign-in page's help (this listener is on loopback; issue 48).
    const none = await call('GET', '/api/session', { cookie: `keyway_session=${'A'.repeat(43)}` });
    expect(none.status).toBe(200);
    expect(none.json).toEqual({ signed_in: false, token_file: join(proxy.home, 'data', 'admin.token') });
    expect((await call('GET', '/api/grants', { cookie: 'keyway_session=../../etc' })).status).toBe(401);
    // A form post (the only cross-site write a page can make without CORS) is not JSON: 415.
    const form = await fetch(`${admin.base}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${admin.token}`,
    });
    expect(form.status).toBe(415);
    expect(form.headers.get('set-cookie')).toBeNull();
  });

  it('a write made with the session needs its CSRF token; a token caller needs none', async () => {
    const session = await signIn();
    const other = await signIn();
    const without = await call('POST', '/api/reload', { cookie: session.cookie });
    expect(without.status).toBe(403);
    expect(without.json?.['error']).toMatchObject({ code: 'csrf_required' });
    // Another session's CSRF token is not this one's.
    expect((await call('POST', '/api/reload', { cookie: session.cookie, 'x-keyway-csrf': other.csrf })).status).toBe(403);
    expect((await call('DELETE', '/api/session', { cookie: session.cookie })).status).toBe(403);
    const withToken = await call('POST', '/api/reload', { cookie: session.cookie, 'x-keyway-csrf': session.csrf });
    expect(withToken.status, withToken.text).toBe(200);
    const bearer = await admin.call('POST', '/api/reload');
    expect(bearer.status).toBe(200);
    // The refused write was not made: only the two accepted reloads are audited.
    const reloads = proxy.auditLines().filter((l) => l['decision'] === 'admin' && l['action'] === 'reload');
    expect(reloads).toHaveLength(2);
  });

  it('the cookie alone reads nothing: browsers send it to every port of the host, so reads need the CSRF token too', async () => {
    const session = await signIn();
    for (const path of ['/api/grants', '/api/agents', '/api/overview', '/api/status', '/metrics', '/api/openapi.json']) {
      const res = await call('GET', path, { cookie: session.cookie });
      expect(res.status, path).toBe(403);
      expect(res.json?.['error'], path).toMatchObject({ code: 'csrf_required' });
    }
    expect((await call('GET', '/api/session', { cookie: session.cookie })).json).toMatchObject({ signed_in: false });
    // The event stream (no custom headers in a browser) may carry it in the query; a write may not.
    expect((await call('GET', `/api/grants?csrf=${session.csrf}`, { cookie: session.cookie })).status).toBe(200);
    expect((await call('POST', `/api/reload?csrf=${session.csrf}`, { cookie: session.cookie })).status).toBe(403);
  });

  it('signs out: the session ends on the server and the cookie is cleared', async () => {
    const session = await signIn();
    const out = await call('DELETE', '/api/session', { cookie: session.cookie, 'x-keyway-csrf': session.csrf });
    expect(out.status).toBe(200);
    expect(out.headers.get('set-cookie')).toMatch(/^keyway_session=; .*Max-Age=0/);
    expect((await call('GET', '/api/grants', { cookie: session.cookie })).status).toBe(401);
  });

  it('serves the page and its assets with a strict CSP and no-sniff, no-referrer headers', async () => {
    for (const path of ['/', '/assets/app.js', '/assets/style.css', '/api/grants', '/healthz']) {
      const res = await call('GET', path, path.startsWith('/api/') ? { authorization: `Bearer ${admin.token}` } : {});
      expect(res.status, path).toBe(200);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp, path).toContain("default-src 'self'");
      expect(csp, path).toContain("frame-ancestors 'none'");
      expect(csp, path).not.toContain('unsafe-inline');
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
    }
    const page = await call('GET', '/');
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    // No inline script or style in the page itself, and nothing loaded from elsewhere.
    expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page.text).not.toMatch(/<style|style="/);
    expect(page.text).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
    expect((await call('GET', '/assets/app.js')).headers.get('content-type')).toMatch(/^text\/javascript/);
  });

  it('serves only its own files: no way out of the folder, no write, no foreign Host', async () => {
    for (const path of [
      '/assets/../config/keyway.yaml',
      '/assets/%2e%2e%2fdata%2fadmin.token',
      '/assets/..%2f..%2fdata/admin.token',
      '/assets/nothing.js',
      '/assets/',
    ]) {
      const res = await fetch(`${admin.base}${path}`);
      const text = await res.text();
      expect([404, 401], path).toContain(res.status);
      expect(text).not.toContain(admin.token);
    }
    expect((await fetch(`${admin.base}/`, { method: 'POST' })).status).toBe(405);
    // fetch drops a Host header it is given: the raw request says it.
    const foreign = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: Number(new URL(admin.base).port), path: '/', headers: { host: 'evil.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject).end();
    });
    expect(foreign).toBe(403);
  });

  it('limits wrong tokens per client: after ten, even the right one waits (429, Retry-After)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await call('POST', '/api/session', {}, { token: `wrong-${i}` })).status);
    // Ten wrong tries (one more if an earlier test spent one): 401s, then 429s.
    expect(statuses.slice(0, 9).every((s) => s === 401)).toBe(true);
    expect((await call('POST', '/api/session', {}, { token: 'wrong-again' })).status).toBe(429);
    const right = await call('POST', '/api/session', {}, { token: admin.token });
    expect(right.status).toBe(429);
    expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(right.headers.get('set-cookie')).toBeNull();
    // The admin token itself still works (the limit is on the sign-in page only).
    expect((await admin.call('GET', '/api/grants')).status).toBe(200);
  });

  it('the overview counts proxied requests per minute by decision', async () => {
    const env = cleanEnv({ HTTPS_PROXY: proxy.url, CURL_CA_BUNDLE: proxy.bundlePath });
    const ok = await curl([`https://api.example.test:${upstream.port}/echo`], env);
    expect(ok.code, ok.stderr).toBe(0);
    // No grant for this host: tunnelled, and the client sees the upstream's own certificate.
    const tunnelled = await curl([`https://tunnel.example.test:${upstream.port}/echo`], { ...env, CURL_CA_BUNDLE: TLS_FIXTURES.caPath });
    expect(tunnelled.code, tunnelled.stderr).toBe(0);
    type Overview = { minutes: Array<Record<string, number>>; totals: Record<string, number>; grants: Record<string, number> };
    // A tunnel's line is written when the tunnel closes, just after curl has its answer.
    await waitFor(() => (proxy.auditLines().some((l) => l['decision'] === 'tunnel') ? true : undefined), 'the tunnel audit line', 10_000);
    const res = await admin.call('GET', '/api/overview');
    expect(res.status).toBe(200);
    const overview = res.body as Overview;
    expect(overview.minutes).toHaveLength(60);
    expect(overview.totals['inject']).toBe(1);
    expect(overview.totals['tunnel']).toBe(1);
    // Both in the current minute, unless the minute turned between the two requests.
    expect(overview.minutes.slice(-2).reduce((n, m) => n + (m['inject'] ?? 0) + (m['tunnel'] ?? 0), 0)).toBe(2);
    expect(overview.grants).toEqual({ active: 1 });
  });

  it('no answer and no audit line carries the admin token, a session id, or the secret', async () => {
    const audit = JSON.stringify(proxy.auditLines());
    expect(audit).not.toContain(CANARY);
    expect(audit).not.toContain(admin.token);
    expect(audit).not.toMatch(/keyway_session=[A-Za-z0-9_-]/);
    const all = answers.join('\n');
    expect(all).not.toContain(CANARY);
    expect(all).not.toContain(admin.token);
  });
});
