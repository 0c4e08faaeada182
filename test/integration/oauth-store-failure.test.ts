import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyAgent, request } from 'undici';
import { grantRecordId, type StoredGrant } from '../../src/credentials/grant-record.ts';
import { oauthStateId, type OAuthState } from '../../src/credentials/issuing/oauth-state.ts';
import { loadMasterKey, Store } from '../../src/credentials/store/index.ts';
import { withStoreLock } from '../../src/credentials/store/lock.ts';
import { CLIENT_ID, CLIENT_SECRET, startAuthServer, type AuthServer, type TokenResponse } from '../helpers/auth-server.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

// The provider has answered a refresh with a rotated refresh token, then the store write fails (here:
// the store's lock is held by someone else past keyway's lock wait, a real store_locked). The old
// refresh token is spent: presenting it again makes oidc-provider revoke the whole grant. keyway must
// keep the new state, save it once it can, and never call the token endpoint with the spent token,
// from this process or from another keyway process on the same store.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * A pass-through in front of the provider's token endpoint. Armed, it takes the store's lock once the
 * provider has answered and before keyway gets the answer, and keeps it until the test lets go.
 */
interface LockingGate {
  url: string;
  /** Set to a store path: the next answer is held until that store's lock is taken. */
  lockStoreOnAnswer: string | undefined;
  /** The provider's answers, as keyway received them. */
  answers: TokenResponse[];
  locked: Deferred;
  unlock: Deferred;
  lockSettled: Promise<void> | undefined;
  close(): Promise<void>;
}

async function startLockingGate(target: string): Promise<LockingGate> {
  const gate: LockingGate = {
    url: '',
    lockStoreOnAnswer: undefined,
    answers: [],
    locked: deferred(),
    unlock: deferred(),
    lockSettled: undefined,
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const headers: Record<string, string> = {};
        for (const name of ['authorization', 'content-type', 'accept']) {
          const v = req.headers[name];
          if (typeof v === 'string') headers[name] = v;
        }
        const up = await request(target, { method: 'POST', headers, body: Buffer.concat(chunks) });
        const text = await up.body.text();
        const storePath = gate.lockStoreOnAnswer;
        if (storePath !== undefined && up.statusCode === 200) {
          gate.lockStoreOnAnswer = undefined;
          gate.lockSettled = withStoreLock(storePath, async () => {
            gate.locked.resolve();
            await gate.unlock.promise;
          });
          await gate.locked.promise;
        }
        if (up.statusCode === 200) gate.answers.push(JSON.parse(text) as TokenResponse);
        res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json') }).end(text);
      })().catch(() => res.destroy());
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  gate.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  gate.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return gate;
}

describe('OAuth refresh whose store write fails after the provider rotated the refresh token', () => {
  let auth: AuthServer;
  let gate: LockingGate;
  let upstream: TestUpstream;
  /** Two keyway processes' worth of proxy on one home and store. */
  let a: TestProxy;
  let b: TestProxy;
  let clientA: ProxyAgent;
  let clientB: ProxyAgent;
  /** Every refresh token presented at the provider's token endpoint, in order, whatever the outcome. */
  const presented: string[] = [];
  /** The bearer token on every request the upstream saw. */
  const sent: string[] = [];
  const secrets = new Set<string>();
  const bodies: string[] = [];

  beforeAll(async () => {
    auth = await startAuthServer();
    const record = (ctx: { oidc?: { params?: Record<string, unknown> } }) => {
      const params = ctx.oidc?.params;
      if (params?.['grant_type'] === 'refresh_token') presented.push(String(params['refresh_token']));
    };
    auth.provider.on('grant.success', record);
    auth.provider.on('grant.error', record);
    gate = await startLockingGate(auth.tokenUrl);
    upstream = await startUpstream({
      authorize: async (header) => {
        const token = header?.replace(/^Bearer /, '') ?? '';
        sent.push(token);
        return token !== '' && auth.introspect(token);
      },
    });
    const config = {
      providers: { gated: { token_url: gate.url, authorize_url: auth.authUrl, client_id: CLIENT_ID, client_secret: 'env:TEST_CLIENT_SECRET' } },
    };
    a = await startProxy({ config, env: { TEST_CLIENT_SECRET: CLIENT_SECRET } });
    b = await startProxy({ config, env: { TEST_CLIENT_SECRET: CLIENT_SECRET }, home: a.home });
    clientA = new ProxyAgent({ uri: a.url, requestTls: { ca: readFileSync(a.caPath, 'utf8') } });
    clientB = new ProxyAgent({ uri: b.url, requestTls: { ca: readFileSync(b.caPath, 'utf8') } });
  });
  afterAll(async () => {
    gate?.unlock.resolve();
    await gate?.lockSettled?.catch(() => undefined);
    await clientA?.close();
    await clientB?.close();
    await a?.stop();
    await b?.stop();
    await upstream?.close();
    await gate?.close();
    await auth?.close();
  });

  async function send(client: ProxyAgent, path: string): Promise<{ status: number; code: string | undefined; text: string }> {
    const res = await request(`https://api.example.test:${upstream.port}${path}`, { dispatcher: client, headers: { 'x-keyway-grant': 'rotating' } });
    const text = await res.body.text();
    if (res.statusCode !== 200) bodies.push(text);
    const code = res.headers['x-keyway-error'];
    return { status: res.statusCode, code: typeof code === 'string' ? code : undefined, text };
  }

  async function stateOnDisk(): Promise<OAuthState | undefined> {
    const { key } = await loadMasterKey({ dataDir: join(a.home, 'data'), env: { KEYWAY_MASTER_KEY: a.env['KEYWAY_MASTER_KEY']! } });
    const store = await Store.open(join(a.home, 'data', 'store.json'), key);
    try {
      return store.get<OAuthState>(oauthStateId('rotating'));
    } finally {
      store.close();
    }
  }

  it('keeps the rotated state, saves it once the store can be written, and never presents the spent refresh token', async () => {
    const tokens = await auth.obtainTokens();
    expect(tokens.refresh_token).toBeTruthy();
    secrets.add(tokens.access_token).add(tokens.refresh_token!);
    const stale = `stale-${randomBytes(6).toString('hex')}`;
    secrets.add(stale);
    const now = new Date().toISOString();
    await a.running.services.store.update((draft) => {
      draft.set(grantRecordId('rotating'), {
        id: 'rotating',
        type: 'oauth2',
        domains: ['api.example.test'],
        provider: 'gated',
        status: 'active',
        secret: { refreshToken: tokens.refresh_token, accessToken: stale, expiresAt: Date.now() - 1000 },
        created_at: now,
        updated_at: now,
      } satisfies StoredGrant);
    });
    await waitFor(() => b.running.services.store.get(grantRecordId('rotating')), 'process B to see the grant');

    // The provider rotates; the store stays locked past keyway's lock wait (about 7 s), so the write fails.
    gate.lockStoreOnAnswer = a.running.services.store.path;
    const first = await send(clientA, '/echo?first');
    expect(first.status, first.text).toBe(502);
    expect(first.code).toBe('token_refresh_failed');
    expect(presented).toEqual([tokens.refresh_token]);
    expect(gate.answers).toHaveLength(1);
    const rotated = gate.answers[0]!;
    secrets.add(rotated.access_token).add(rotated.refresh_token!);
    expect(rotated.refresh_token).not.toBe(tokens.refresh_token);

    // While the state waits for its save: one more request here, one through the other process.
    const againA = send(clientA, '/echo?again-a');
    const viaB = send(clientB, '/echo?via-b');
    await sleep(300);
    gate.unlock.resolve(); // the store can be written again
    await gate.lockSettled;

    const b1 = await viaB;
    expect(b1.status, b1.text).toBe(200);
    const a2 = await againA;
    // Either refused while the save was still due (502, nothing sent), or it waited for the save.
    if (a2.status !== 200) expect([a2.status, a2.code], a2.text).toEqual([502, 'token_refresh_failed']);
    const a3 = await send(clientA, '/echo?after');
    expect(a3.status, a3.text).toBe(200);

    // One refresh in all: the spent refresh token never went back to the provider.
    expect(presented).toEqual([tokens.refresh_token]);
    expect(sent).not.toContain(stale);
    expect(new Set(sent)).toEqual(new Set([rotated.access_token]));
    const saved = await stateOnDisk();
    expect(saved?.refreshToken).toBe(rotated.refresh_token);
    expect(saved?.accessToken).toBe(rotated.access_token);
    expect(await auth.introspect(rotated.refresh_token!)).toBe(true); // the grant was not revoked

    // And the saved refresh token really refreshes (the grant is alive at the provider).
    const refresh = await a.cli(['refresh', 'rotating', '--json']);
    expect(refresh.code, refresh.stderr).toBe(0);
    expect(presented).toEqual([tokens.refresh_token, rotated.refresh_token]);
    const after = await stateOnDisk();
    secrets.add(after!.accessToken!).add(after!.refreshToken!);
    expect(await auth.introspect(after!.refreshToken!)).toBe(true);

    const lines = a.auditLines().filter((l) => l['grant'] === 'rotating');
    expect(lines[0]).toMatchObject({ decision: 'error', code: 'token_refresh_failed', status: 502 });
  });

  it('canary: no access or refresh token in the logs, the audit logs or the error bodies', () => {
    const haystack = [a.logs.join(''), b.logs.join(''), existsSync(a.auditPath) ? readFileSync(a.auditPath, 'utf8') : '', ...bodies].join('\n');
    expect(haystack).toContain('token_refresh_failed');
    expect(haystack).toContain('not saved');
    expect(secrets.size).toBeGreaterThanOrEqual(5);
    expect([...secrets].filter((s) => haystack.includes(s))).toEqual([]);
  });
});
