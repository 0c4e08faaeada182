import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as client from 'openid-client';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuthServer, CLIENT_ID, CLIENT_SECRET, startAuthServer } from '../helpers/auth-server.ts';
import { type ChildProxy, SRC_CLI, startChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { codeLogin } from '../helpers/oidc-login.ts';
import { cleanEnv, startProxy, TEST_HOSTS, type TestProxy } from '../helpers/keyway.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

// Two keyways on one store: a second process on the same home (file store), and two replicas of
// their own homes on one PostgreSQL database. A login captured through one resolves through the
// other, and a refresh token used through both at once goes to the provider once, whose answer both
// clients get (one of them from keyway: captured_again).

const LOGIN_HOST = 'login.example.test';
const HOSTS = [...TEST_HOSTS, LOGIN_HOST];
const GRANTS = { 'corp-login': { type: 'login_capture', domains: ['api.example.test'], capture: { endpoints: [{ host: LOGIN_HOST, path: '/token' }] } } };

/** One keyway as the test drives it: its proxy URL, its CA, and its audit log. */
interface Keyway {
  url: string;
  ca: string;
  audit(): string;
}

let auth: AuthServer;
let api: TestUpstream;

beforeAll(async () => {
  auth = await startAuthServer({ tls: { hostname: LOGIN_HOST } });
  api = await startUpstream({ authorize: async (a) => a?.startsWith('Bearer ') === true && auth.introspect(a.slice(7)) });
});

afterAll(async () => {
  await api?.close();
  await auth?.close();
});

function through(keyway: Keyway): client.CustomFetch {
  const dispatcher = new ProxyAgent({ uri: keyway.url, requestTls: { ca: keyway.ca } });
  return ((input: string, init: RequestInit) => undiciFetch(input, { ...(init as object), dispatcher })) as unknown as client.CustomFetch;
}

/** Logs in through the first keyway, then uses and refreshes through both. */
async function loginOnceRefreshOnce(first: Keyway, second: Keyway): Promise<void> {
  const viaFirst = await client.discovery(new URL(auth.issuer), CLIENT_ID, CLIENT_SECRET, undefined, { [client.customFetch]: through(first) });
  const viaSecond = await client.discovery(new URL(auth.issuer), CLIENT_ID, CLIENT_SECRET, undefined, { [client.customFetch]: through(second) });
  const tokens = await codeLogin(viaFirst, auth);
  const resource = new URL(`https://api.example.test:${api.port}/echo`);
  // The other keyway reads the store once it changes (a file watch, PostgreSQL's change feed).
  await waitForAsync(
    async () => ((await client.fetchProtectedResource(viaSecond, tokens.access_token, resource, 'GET')).status === 200 ? true : undefined),
    'the other keyway resolving',
  );

  const before = auth.tokenCalls['refresh_token'] ?? 0;
  const [a, b] = await Promise.all([client.refreshTokenGrant(viaFirst, tokens.refresh_token!), client.refreshTokenGrant(viaSecond, tokens.refresh_token!)]);
  expect(auth.tokenCalls['refresh_token']).toBe(before + 1);
  expect(a.access_token).toBe(b.access_token);
  expect(a.refresh_token).toBe(b.refresh_token);
  expect(a.refresh_token).not.toBe(tokens.refresh_token);
  await waitForAsync(
    async () => (`${first.audit()}${second.audit()}`.includes('"captured_again":true') ? true : undefined),
    'one answered from the other’s refresh',
  );
  await waitForAsync(
    async () => ((await client.fetchProtectedResource(viaSecond, a.access_token, resource, 'GET')).status === 200 ? true : undefined),
    'the new token through the other',
  );
  expect((await client.fetchProtectedResource(viaFirst, a.access_token, resource, 'GET')).status).toBe(200);
}

describe('captured tokens shared through the store', () => {
  it('file store: two keyways on one home', async () => {
    const config = { proxy: { hosts: Object.fromEntries(HOSTS.map((h) => [h, '127.0.0.1'])) }, grants: GRANTS };
    const one: TestProxy = await startProxy({ config });
    const two: TestProxy = await startProxy({ config, home: one.home });
    const keyway = (p: TestProxy): Keyway => ({ url: p.url, ca: readFileSync(p.caPath, 'utf8'), audit: () => readFileSync(p.auditPath, 'utf8') });
    try {
      await loginOnceRefreshOnce(keyway(one), keyway(two));
    } finally {
      await two.stop();
      await one.stop();
    }
  });

  describe('PostgreSQL: two replicas', () => {
    let db: TestPostgres;
    const children: ChildProxy[] = [];
    const homes: string[] = [];

    beforeAll(async () => {
      db = await startPostgres();
      const masterKey = randomBytes(32).toString('base64');
      for (let i = 0; i < 2; i++) {
        const home = writeChildHome({ store: { backend: 'postgres', url: 'env:KEYWAY_DATABASE_URL' }, audit: { replica: `r${i}` }, grants: GRANTS }, HOSTS);
        const registry = process.env['KEYWAY_LISTENERS_DIR'];
        const env = cleanEnv({ KEYWAY_MASTER_KEY: masterKey, KEYWAY_DATABASE_URL: db.url, ...(registry ? { KEYWAY_LISTENERS_DIR: registry } : {}) });
        children.push(await startChildProxy({ cli: SRC_CLI, home, env }));
        homes.push(home);
      }
    });

    afterAll(async () => {
      for (const c of children) await c.stop();
      await db?.destroy();
    });

    it('a login through one replica resolves through the other, and one refresh serves both', async () => {
      const keyway = (i: number): Keyway => ({
        url: `http://127.0.0.1:${children[i]!.port}`,
        ca: readFileSync(join(homes[i]!, 'certs', 'ca.pem'), 'utf8'),
        audit: () => readFileSync(join(homes[i]!, 'logs', 'audit.jsonl'), 'utf8'),
      });
      await loginOnceRefreshOnce(keyway(0), keyway(1));
      const rows = await db.query('SELECT count(*)::int AS n FROM keyway_records WHERE id LIKE $1', ['captured:%']);
      expect(rows.rows[0].n).toBeGreaterThanOrEqual(4);
      // Sealed: no real token in the database.
      const all = await db.query('SELECT * FROM keyway_records');
      const dump = JSON.stringify(all.rows);
      for (const token of auth.issuedTokens) expect(dump.includes(token)).toBe(false);
    });
  });
});
