// The admin API's grant routes on a real keyway: a grant made, changed, rotated, revoked and removed
// over the API changes what the proxy injects on the next request (real curl through the proxy to
// a loopback HTTPS upstream); no answer, audit line or log carries the secret; every write leaves
// one audit line; a hostile caller gets 401/404/409/413/415 and nothing changes.
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminCall, type AdminClient } from '../helpers/admin-api.ts';
import { curl, waitFor } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const ROTATED = `${CANARY}-rotated`;
const CONFIG_SECRET = `${CANARY}-config`;

interface Grant {
  id: string;
  status: string;
  display_status: string;
  status_detail: string;
  secret: string;
  domains: string[];
  labels: Record<string, string>;
  account: string | null;
  source: string;
  inject: string;
  last_used_at: string | null;
  token_expires_at: string | null;
}

describe('admin API: grants', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;
  /** Every answer the API gave, for the canary search. */
  const answers: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      env: { CONFIG_SECRET },
      // Nothing is tunnelled blind: a host no grant covers is refused, so "no grant" is visible.
      config: {
        proxy: { unmatched: 'deny' },
        grants: { fromconfig: { type: 'bearer', domains: ['other.example.test'], secret: 'env:CONFIG_SECRET' } },
      },
    });
    admin = adminClient(proxy);
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const call = async (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<AdminCall> => {
    const res = await admin.call(method, path, body, headers);
    answers.push(res.text);
    return res;
  };
  /** A real curl through the proxy; the Authorization the upstream saw, or the refusal. */
  const through = async (host = 'api.example.test') => {
    const before = upstream.seen.length;
    const res = await curl(
      ['-o', '/dev/null', '-w', '%{http_code}', '-x', proxy.url, `https://${host}:${upstream.port}/echo`],
      cleanEnv({ CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    const seen = upstream.seen.slice(before);
    // A refused CONNECT has no response code of its own: curl names the CONNECT's status on stderr.
    const status = Number(res.stdout) || Number(/CONNECT tunnel failed, response (\d+)/.exec(res.stderr)?.[1]);
    return { status, authorization: seen[0]?.headers.authorization, reachedUpstream: seen.length > 0 };
  };
  const adminLines = () => proxy.auditLines().filter((l) => l['decision'] === 'admin');

  it('refuses a caller without the admin token, or with a wrong one; X-API-Key works', async () => {
    const none = await fetch(`${admin.base}/api/grants`);
    expect(none.status).toBe(401);
    const wrong = await fetch(`${admin.base}/api/grants`, {
      method: 'POST',
      headers: { authorization: 'Bearer nope', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(wrong.status).toBe(401);
    const apiKey = await fetch(`${admin.base}/api/grants`, { headers: { 'x-api-key': admin.token } });
    expect(apiKey.status).toBe(200);
    // A refused write is not a write: no audit line, no grant.
    expect(adminLines()).toEqual([]);
  });

  it('a grant created over the API injects its secret on the next proxied request, and never shows it', async () => {
    expect((await through()).status).toBe(403);
    const created = await call('POST', '/api/grants', {
      id: 'github',
      type: 'bearer',
      domains: ['api.example.test'],
      labels: { team: 'payments' },
      secret: CANARY,
    });
    expect(created.status).toBe(201);
    const grant = (created.body as { grant: Grant }).grant;
    expect(grant).toMatchObject({
      id: 'github',
      secret: 'set',
      status: 'active',
      display_status: 'active',
      labels: { team: 'payments' },
      source: 'store',
      account: null,
    });
    expect(created.text).not.toContain(CANARY);

    const res = await through();
    expect(res).toMatchObject({ status: 200, authorization: `Bearer ${CANARY}` });
  });

  it('lists and shows the grant with status at a glance, both clocks, labels and account; a config grant too', async () => {
    const list = await call('GET', '/api/grants');
    expect(list.status).toBe(200);
    const grants = (list.body as { grants: Grant[] }).grants;
    expect(grants.map((g) => g.id)).toEqual(['fromconfig', 'github']);
    expect(grants[0]).toMatchObject({ source: 'config', secret: 'set', display_status: 'active', labels: {} });
    for (const key of ['token_expires_at', 'last_used_at', 'last_refreshed_at', 'scopes', 'leases', 'account', 'status_detail'])
      expect(grants[1]).toHaveProperty(key);
    const show = await call('GET', '/api/grants/github');
    expect((show.body as { grant: Grant }).grant.id).toBe('github');
  });

  it('PATCH changes domains, injection and labels and keeps the secret; it does not take a secret', async () => {
    const patched = await call('PATCH', '/api/grants/github', { inject: { header: 'X-Api-Token', format: 'token {secret}' }, labels: { env: 'prod' } });
    expect(patched.status).toBe(200);
    expect((patched.body as { grant: Grant }).grant).toMatchObject({ labels: { env: 'prod' }, secret: 'set' });
    const seen = await through();
    expect(seen.status).toBe(200);
    expect(upstream.seen.at(-1)?.headers['x-api-token']).toBe(`token ${CANARY}`);

    const sneaky = await call('PATCH', '/api/grants/github', { secret: 'x', labels: {} });
    expect(sneaky.status).toBe(400);
    expect((sneaky.body as { error: { message: string } }).error.message).toContain('unknown field "secret"');
    const badInject = await call('PATCH', '/api/grants/github', { inject: { format: 'no placeholder' } });
    expect(badInject.status).toBe(400);
    expect((badInject.body as { error: { message: string } }).error.message).toBe('inject.format must contain {secret}');
    const tooBroad = await call('PATCH', '/api/grants/github', { domains: ['*.com'] });
    expect(tooBroad.status).toBe(400);
    const badLabel = await call('PATCH', '/api/grants/github', { labels: { 'Bad Key': 'x' } });
    expect(badLabel.status).toBe(400);
    // A right-to-left override would reverse the listing after it (in the dashboard and grants show).
    const bidiLabel = await call('PATCH', '/api/grants/github', { labels: { team: 'pay\u202Ements' } });
    expect(bidiLabel.status).toBe(400);
    expect((bidiLabel.body as { error: { message: string } }).error.message).toBe(
      'labels team: it holds U+202E, a control or bidirectional-formatting character',
    );
    const bidiFormat = await call('PATCH', '/api/grants/github', { inject: { format: 'Bearer {secret}\u2066' } });
    expect(bidiFormat.status).toBe(400);
    const cliBidi = await proxy.cli(['grants', 'set', 'github', '--label', 'owner=\u2067ada']);
    expect(cliBidi.code).not.toBe(0);
    expect(cliBidi.stderr).toContain('U+2067');

    // Back to the default injection, for the rest of the file.
    const back = await call('PATCH', '/api/grants/github', { inject: { header: 'Authorization', format: 'Bearer {secret}' } });
    expect(back.status).toBe(200);
  });

  it('PUT secret rotates it: the next request carries the new one', async () => {
    const set = await call('PUT', '/api/grants/github/secret', { secret: ROTATED });
    expect(set.status).toBe(200);
    expect(set.text).not.toContain(CANARY);
    expect(await through()).toMatchObject({ status: 200, authorization: `Bearer ${ROTATED}` });
  });

  it('revoke marks it revoked at once: the next request is refused before the upstream', async () => {
    const revoked = await call('POST', '/api/grants/github/revoke');
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ status: 'revoked', provider: 'no revocation endpoint: revoked in keyway only', grant: { display_status: 'revoked' } });
    expect(await through()).toMatchObject({ status: 401, reachedUpstream: false });
    // A new secret makes it active again.
    expect((await call('PUT', '/api/grants/github/secret', { secret: CANARY })).status).toBe(200);
    expect(await through()).toMatchObject({ status: 200, authorization: `Bearer ${CANARY}` });
  });

  it('refresh on a static grant is a 400 that says why', async () => {
    const res = await call('POST', '/api/grants/github/refresh');
    expect(res.status).toBe(400);
    const message = (res.body as { error: { message: string } }).error.message;
    expect(message).toMatch(/^grant "github" is bearer: only .* grants, and aws_sigv4 grants that renew from their key \(assume_role\), refresh$/);
    // Every type that refreshes is named, the newer ones too; a static one is not.
    for (const type of ['oauth2', 'client_credentials', 'github_app', 'google_service_account', 'private_key_jwt']) expect(message).toContain(type);
    expect(message).not.toMatch(/only .*\bbearer\b/);
  });

  it('the CLI and the API change the same grant: labels set with one show in the other', async () => {
    const cli = await proxy.cli(['grants', 'set', 'github', '--label', 'owner=ada', '--label', 'env=']);
    expect(cli.code, cli.stderr).toBe(0);
    // The running proxy sees a CLI write within a second (it polls the store).
    let labels: Record<string, string> = {};
    for (let i = 0; i < 40 && labels['owner'] !== 'ada'; i++) {
      labels = ((await call('GET', '/api/grants/github')).body as { grant: Grant }).grant.labels;
      if (labels['owner'] !== 'ada') await new Promise((r) => setTimeout(r, 100));
    }
    expect(labels).toEqual({ owner: 'ada' });
    expect((await call('PATCH', '/api/grants/github', { labels: { owner: 'grace', team: 'payments' } })).status).toBe(200);
    const show = await proxy.cli(['grants', 'show', 'github']);
    expect(show.stdout).toMatch(/^Labels: +owner=grace, team=payments$/m);
    expect(show.stdout).toMatch(/^Status: +active$/m);
    expect(show.stdout).not.toContain(CANARY);
    // A grant added with the CLI, labels and all, is one the API can see and remove.
    const added = await proxy.cli(['grants', 'add', 'labelled', '--type', 'bearer', '--domains', 'plain.example.test', '--label', 'team=ops', '--json']);
    expect(added.code, added.stderr).toBe(0);
    expect((JSON.parse(added.stdout) as Grant).labels).toEqual({ team: 'ops' });
    let removed = 0;
    for (let i = 0; i < 40 && removed !== 200; i++) {
      removed = (await call('DELETE', '/api/grants/labelled')).status;
      if (removed !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(removed).toBe(200);
    const bad = await proxy.cli(['grants', 'set', 'github', '--label', 'novalue']);
    expect(bad.code).toBe(2);
    // A type left out is said to be missing (issue 86), before the list of what it may be.
    const untyped = await proxy.cli(['grants', 'add', 'gh2', '--domains', 'api.github.com']);
    expect(untyped.code).toBe(2);
    expect(untyped.stderr).toContain('--type is missing: a grant needs its type, one of oauth2,');
    expect(bad.stderr).toContain('--label: expected KEY=VALUE');
  });

  it('a grant defined in the config is 409 for every change, and keeps working', async () => {
    for (const [method, path, body] of [
      ['PATCH', '/api/grants/fromconfig', { labels: { a: 'b' } }],
      ['PUT', '/api/grants/fromconfig/secret', { secret: 'x' }],
      ['DELETE', '/api/grants/fromconfig', undefined],
      ['POST', '/api/grants', { id: 'fromconfig', type: 'bearer', domains: ['other.example.test'] }],
    ] as const) {
      const res = await call(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(409);
    }
    expect(await through('other.example.test')).toMatchObject({ status: 200, authorization: `Bearer ${CONFIG_SECRET}` });
  });

  it('hostile input: wrong media type, huge body, bad JSON, odd ids, unknown grants', async () => {
    const post = (body: string, type: string) =>
      fetch(`${admin.base}/api/grants`, { method: 'POST', headers: { authorization: `Bearer ${admin.token}`, 'content-type': type }, body });
    const form = await post(`id=evil&type=bearer&domains=api.example.test&secret=${CANARY}`, 'application/x-www-form-urlencoded');
    expect(form.status).toBe(415);
    expect(await form.text()).not.toContain(CANARY);
    expect((await post('{"id":"evil"}', 'text/plain')).status).toBe(415);
    const huge = await post(JSON.stringify({ id: 'huge', type: 'bearer', domains: ['api.example.test'], secret: 'x'.repeat(70_000) }), 'application/json');
    expect(huge.status).toBe(413);
    const broken = await post(`{"id":"evil","secret":"${CANARY}"`, 'application/json');
    expect(broken.status).toBe(400);
    expect(await broken.text()).not.toContain(CANARY);
    const array = await post('[]', 'application/json');
    expect(array.status).toBe(400);

    // A page that rebinds a name it owns to 127.0.0.1 sends its own Host: refused before anything runs.
    const rebound = await new Promise<number>((resolve, reject) => {
      const body = JSON.stringify({ id: 'rebound', type: 'bearer', domains: ['api.example.test'] });
      const req = httpRequest(
        `${admin.base}/api/grants`,
        {
          method: 'POST',
          headers: { host: `evil.example:${new URL(admin.base).port}`, authorization: `Bearer ${admin.token}`, 'content-type': 'application/json' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    expect(rebound).toBe(403);

    for (const id of ['..', '%2e%2e', 'a%2fb', 'GITHUB-personal', 'no-such-grant']) {
      for (const [method, path] of [
        ['GET', `/api/grants/${id}`],
        ['DELETE', `/api/grants/${id}`],
        ['POST', `/api/grants/${id}/revoke`],
        ['POST', `/api/grants/${id}/refresh`],
      ] as const) {
        const res = await call(method, path);
        expect(res.status, `${method} ${path}`).toBe(404);
      }
    }
    for (const id of ['UPPER', '../x', 'a/b', '-lead', '']) {
      const res = await call('POST', '/api/grants', { id, type: 'bearer', domains: ['api.example.test'] });
      expect(res.status, JSON.stringify(id)).toBe(400);
    }
    const wrongTypes = await call('POST', '/api/grants', { id: 'typed', type: 'bearer', domains: 'api.example.test' });
    expect(wrongTypes.status).toBe(400);
    const badSecret = await call('POST', '/api/grants', { id: 'typed', type: 'bearer', domains: ['api.example.test'], secret: { token: CANARY } });
    expect(badSecret.status).toBe(400);
    expect(badSecret.text).not.toContain(CANARY);
    // Nothing was made by any of it.
    const ids = ((await call('GET', '/api/grants')).body as { grants: Grant[] }).grants.map((g) => g.id);
    expect(ids).toEqual(['fromconfig', 'github']);
  });

  it('DELETE removes it: the next request is refused, and the id is free again', async () => {
    const removed = await call('DELETE', '/api/grants/github');
    expect(removed).toMatchObject({ status: 200, body: { removed: 'github' } });
    expect(await through()).toMatchObject({ status: 403, reachedUpstream: false });
    expect((await call('GET', '/api/grants/github')).status).toBe(404);
    expect((await call('DELETE', '/api/grants/github')).status).toBe(404);
  });

  it('every write left one audit line (decision admin, action, grant), and the secret is in no answer, audit line or log', async () => {
    // The last write's line; up to 10 s, as the full suite on 2 cores can hold a batch back for seconds.
    await waitFor(() => adminLines().some((l) => l['action'] === 'grants.delete' && l['status'] === 404), 10_000);
    // The API's own lines: the CLI's writes in this suite are admin lines too, with client cli.
    const lines = adminLines().filter((l) => l['client'] !== 'cli');
    const ok = (action: string, grant: string) =>
      lines.filter((l) => l['action'] === action && l['grant'] === grant && [200, 201].includes(l['status'] as number));
    expect(ok('grants.create', 'github')).toHaveLength(1);
    expect(ok('grants.update', 'github')).toHaveLength(3);
    expect(ok('grants.set_secret', 'github')).toHaveLength(2);
    expect(ok('grants.revoke', 'github')).toHaveLength(1);
    expect(ok('grants.delete', 'github')).toHaveLength(1);
    for (const line of lines) {
      expect(line).toMatchObject({ decision: 'admin', actor: 'token', method: expect.stringMatching(/^(POST|PUT|PATCH|DELETE)$/) });
      expect(String(line['path'])).toMatch(/^\/api\/grants/);
    }
    // Refused writes are audited too, with their code.
    expect(lines.some((l) => l['action'] === 'grants.update' && l['status'] === 409 && l['code'] === 'conflict' && l['grant'] === 'fromconfig')).toBe(true);
    // Reads are not.
    expect(lines.some((l) => l['method'] === 'GET')).toBe(false);

    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const secret of [CANARY, ROTATED, CONFIG_SECRET]) {
      expect(findLeak(answers.join('\n'), secret), `answers: ${secret}`).toBeUndefined();
      expect(findLeak(audit, secret), `audit: ${secret}`).toBeUndefined();
      expect(findLeak(proxy.logs.join(''), secret), `log: ${secret}`).toBeUndefined();
    }
  });
});
