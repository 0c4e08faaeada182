import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { grantRecordId, type StoredGrant } from '../../src/credentials/grant-record.ts';
import type { Grant } from '../../src/credentials/grant.ts';
import { injectorFor } from '../../src/credentials/types/index.ts';
import type { OAuth2Material } from '../../src/credentials/material.ts';
import { oauthStateId, type OAuthState } from '../../src/credentials/issuing/oauth-state.ts';
import { TokenManager, type TokenStore } from '../../src/credentials/issuing/oauth-tokens.ts';
import type { TokenEndpoint } from '../../src/credentials/issuing/token-endpoint.ts';
import { Store, type StoreDraft } from '../../src/credentials/store/index.ts';
import { ProxyError } from '../../src/errors/index.ts';
import { CLIENT_ID, CLIENT_SECRET, startAuthServer, type AuthServer } from '../helpers/auth-server.ts';
import { waitFor } from '../helpers/wait.ts';

// A refreshed token state the store could not take (the disk full, an I/O error, the store locked),
// against oidc-provider with refresh-token rotation. The store here is real; only its failures are
// injected (an errno error, as fs would raise it), right after the provider answered, so each case
// runs in a second rather than behind the store's 7 s lock wait (the integration test
// oauth-store-failure.test.ts makes a real store_locked).

/** Writes fail from the moment the provider answers a refresh (`armed`) while `mode` says so. */
interface Faults {
  armed: 'fail' | 'fail-after-write' | undefined;
  mode: 'off' | 'fail' | 'fail-after-write';
  /** How many more writes to fail; then the mode goes back to off. */
  remaining: number;
  injected: number;
}

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: simulated by the test`), { code });
}

function faultyStore(store: Store, faults: Faults): TokenStore {
  const injectOne = (code: string) => {
    faults.injected++;
    if (--faults.remaining <= 0) faults.mode = 'off';
    throw errno(code);
  };
  return {
    get: (id) => store.get(id),
    async update<R>(fn: (draft: StoreDraft) => R | Promise<R>): Promise<R> {
      if (faults.mode === 'fail') injectOne('ENOSPC');
      const result = await store.update(fn);
      // The file was renamed into place, then something after it failed (the directory's fsync).
      if (faults.mode === 'fail-after-write') injectOne('EIO');
      return result;
    },
  };
}

describe('TokenManager: a refreshed state the store could not take', () => {
  let auth: AuthServer;
  const presented: string[] = [];
  const faults: Faults = { armed: undefined, mode: 'off', remaining: 0, injected: 0 };
  const logs: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write: (chunk: Buffer, _e, done) => {
        logs.push(chunk.toString());
        done();
      },
    }),
  );
  const endpoint: TokenEndpoint = { tokenUrl: '', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, clientAuth: 'basic', bodyFormat: 'form', extraParams: {} };
  const secrets = new Set<string>();

  beforeAll(async () => {
    auth = await startAuthServer();
    endpoint.tokenUrl = auth.tokenUrl;
    const record = (ctx: { oidc?: { params?: Record<string, unknown> } }) => {
      if (ctx.oidc?.params?.['grant_type'] !== 'refresh_token') return;
      presented.push(String(ctx.oidc.params['refresh_token']));
    };
    auth.provider.on('grant.error', record);
    auth.provider.on('grant.success', (ctx) => {
      record(ctx);
      // The provider has rotated: from here the store write fails.
      if (faults.armed) faults.mode = faults.armed;
      faults.armed = undefined;
    });
  });
  afterAll(() => auth?.close());
  beforeEach(() => {
    presented.length = 0;
    logs.length = 0;
    Object.assign(faults, { armed: undefined, mode: 'off', remaining: 0, injected: 0 });
  });

  interface Setup {
    store: Store;
    tokens: TokenManager;
    grant: Grant;
    dir: string;
    key: Buffer;
    refreshToken: string;
  }

  function grantWith(material: OAuth2Material): Grant {
    return {
      id: 'g',
      type: 'oauth2',
      domains: [],
      injector: injectorFor('oauth2', undefined),
      allowHttp: false,
      allowRange: false,
      requirePurpose: false,
      settings: undefined,
      guard: undefined,
      retry: undefined,
      signer: undefined,
      clientCertificate: undefined,
      secretExpiresAt: undefined,
      status: 'active',
      source: 'store',
      provider: 'test',
      material,
    };
  }

  async function material(): Promise<OAuth2Material> {
    const t = await auth.obtainTokens();
    secrets.add(t.access_token).add(t.refresh_token!);
    const stale = `stale-${randomBytes(6).toString('hex')}`;
    secrets.add(stale);
    return { refreshToken: t.refresh_token, accessToken: stale, expiresAt: Date.now() - 1000 };
  }

  async function setMaterial(store: Store, m: OAuth2Material): Promise<void> {
    const now = new Date().toISOString();
    await store.update((draft) => {
      draft.set(grantRecordId('g'), {
        id: 'g',
        type: 'oauth2',
        domains: ['api.example.test'],
        provider: 'test',
        status: 'active',
        secret: m,
        created_at: now,
        updated_at: now,
      } satisfies StoredGrant);
      draft.delete(oauthStateId('g')); // as `keyway secrets set` does
    });
  }

  function manager(store: TokenStore, dir: string, timeoutMs = 5_000): TokenManager {
    return new TokenManager({ store, lockDir: join(dir, 'locks'), endpointFor: () => endpoint, skewMs: 1_000, timeoutMs, logger });
  }

  async function setup(): Promise<Setup> {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-pending-'));
    const key = randomBytes(32);
    const store = await Store.open(join(dir, 'store.json'), key);
    const m = await material();
    await setMaterial(store, m);
    return { store, dir, key, grant: grantWith(m), tokens: manager(faultyStore(store, faults), dir), refreshToken: m.refreshToken! };
  }

  /** The first refresh: the provider answers, the write fails, the request gets 502. */
  async function failFirstWrite(s: Setup, mode: 'fail' | 'fail-after-write', remaining: number): Promise<ProxyError> {
    faults.armed = mode;
    faults.remaining = remaining;
    const err = await s.tokens.accessToken(s.grant).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProxyError);
    logs.push((err as ProxyError).toBody());
    expect((err as ProxyError).code).toBe('token_refresh_failed');
    expect((err as ProxyError).status).toBe(502);
    expect(presented).toEqual([s.refreshToken]);
    expect(s.tokens.hasPendingSave('g')).toBe(true);
    return err as ProxyError;
  }

  const live = (store: Store) => store.get<OAuthState>(oauthStateId('g'));

  it('requests fail without any token call while the state waits, the save is retried in the background, then the new token is used', async () => {
    const s = await setup();
    const err = await failFirstWrite(s, 'fail', Number.POSITIVE_INFINITY);
    expect(err.message).toContain('ENOSPC');
    expect(err.message).toContain('could not be saved');

    // Twenty requests while the disk is still full: all refused, one pending state, no token call.
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => s.tokens.accessToken(s.grant)));
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as ProxyError).code : 'served'))).toEqual(Array(20).fill('token_refresh_failed'));
    expect(presented).toHaveLength(1);
    // A background retry (after 0.5 s) runs without any request.
    await waitFor(() => (faults.injected >= 2 ? true : undefined), 'a background save attempt', 5_000);
    expect(presented).toHaveLength(1);
    expect(live(s.store)).toBeUndefined(); // nothing on disk yet

    faults.mode = 'off'; // the disk has room again
    await waitFor(() => (s.tokens.hasPendingSave('g') ? undefined : true), 'the background save', 10_000);
    const saved = live(s.store);
    expect(saved?.refreshToken).toBeTruthy();
    expect(saved!.refreshToken).not.toBe(s.refreshToken);
    secrets.add(saved!.refreshToken!).add(saved!.accessToken!);
    const token = await s.tokens.accessToken(s.grant);
    expect(token.token).toBe(saved!.accessToken);
    expect(presented).toEqual([s.refreshToken]);
    expect(await auth.introspect(saved!.refreshToken!)).toBe(true);
    expect(logs.join('')).toContain('refreshed token saved after a failed write');
  });

  it("a write that failed after its rename is recognised as saved, not as someone else's", async () => {
    const s = await setup();
    faults.armed = 'fail-after-write';
    faults.remaining = 1;
    // The file already holds the new state (only a step after the rename failed), so this request may
    // be served from it or refused; what matters is what the retry makes of it.
    await s.tokens.accessToken(s.grant).catch((err: unknown) => expect(err).toMatchObject({ code: 'token_refresh_failed' }));
    expect(faults.injected).toBe(1);
    const onDisk = live(s.store);
    expect(onDisk?.refreshToken).toBeTruthy();
    await waitFor(() => (s.tokens.hasPendingSave('g') ? undefined : true), 'the retry', 5_000);
    expect(logs.join('')).toContain('refreshed token saved after a failed write');
    expect(logs.join('')).not.toContain('refreshed token dropped');
    expect(live(s.store)).toEqual(onDisk);
    expect((await s.tokens.accessToken(s.grant)).token).toBe(onDisk!.accessToken);
    expect(presented).toHaveLength(1);
  });

  it('a new secret written while the state waits wins: the pending state is dropped, the new secret refreshes', async () => {
    const s = await setup();
    await failFirstWrite(s, 'fail', Number.POSITIVE_INFINITY);
    const fresh = await material();
    await setMaterial(s.store, fresh); // `keyway secrets set`, straight to the store
    faults.mode = 'off';
    await waitFor(() => (s.tokens.hasPendingSave('g') ? undefined : true), 'the pending state to settle', 5_000);
    expect(logs.join('')).toContain('refreshed token dropped');
    expect(live(s.store)).toBeUndefined(); // not written over the new secret

    const token = await s.tokens.accessToken(grantWith(fresh));
    expect(token.refreshed).toBe(true);
    expect(presented).toEqual([s.refreshToken, fresh.refreshToken]);
  });

  it('a stop settles what is kept: one more save at once, without waiting for the next retry', async () => {
    const s = await setup();
    await failFirstWrite(s, 'fail', Number.POSITIVE_INFINITY);
    faults.mode = 'off'; // the disk has room again, but the next background retry is not due yet
    expect(await s.tokens.settlePending(2_000)).toEqual([]);
    expect(s.tokens.hasPendingSave('g')).toBe(false);
    expect(live(s.store)?.refreshToken).toBeTruthy();
    expect(presented).toHaveLength(1);
  });

  it('a stop that still cannot save names the grant it loses', async () => {
    const s = await setup();
    await failFirstWrite(s, 'fail', Number.POSITIVE_INFINITY);
    expect(await s.tokens.settlePending(300)).toEqual(['g']);
    faults.mode = 'off';
  });

  it('a revoke while the state waits stays a revoke', async () => {
    const s = await setup();
    await failFirstWrite(s, 'fail', Number.POSITIVE_INFINITY);
    await s.store.update((draft) => draft.set(oauthStateId('g'), { status: 'revoked' } satisfies OAuthState));
    faults.mode = 'off';
    await waitFor(() => (s.tokens.hasPendingSave('g') ? undefined : true), 'the pending state to settle', 5_000);
    expect(live(s.store)).toEqual({ status: 'revoked' });
    await expect(s.tokens.accessToken(s.grant)).rejects.toMatchObject({ code: 'grant_needs_reconnect' });
    expect(presented).toHaveLength(1);
  });

  it('refreshNow (keyway refresh, a process about to exit) waits for the save instead of returning with the state in memory', async () => {
    const s = await setup();
    faults.armed = 'fail';
    faults.remaining = 2; // the first write and the first retry fail
    const token = await s.tokens.refreshNow(s.grant);
    expect(token.refreshed).toBe(true);
    expect(live(s.store)?.accessToken).toBe(token.token);
    expect(faults.injected).toBe(2);
    expect(presented).toHaveLength(1);
    expect(s.tokens.hasPendingSave('g')).toBe(false);
  });

  it('another process on the store waits for the refresh lock while the state is pending, then reads it instead of refreshing', async () => {
    const s = await setup();
    await failFirstWrite(s, 'fail', Number.POSITIVE_INFINITY);
    // A second keyway process: its own Store instance on the same file, the same lock folder.
    const other = manager(await Store.open(join(s.dir, 'store.json'), s.key), s.dir, 200);
    const waiting = other.accessToken(s.grant);
    await new Promise((r) => setTimeout(r, 300));
    faults.mode = 'off';
    const token = await waiting;
    expect(token.token).toBe(live(s.store)?.accessToken);
    expect(token.refreshed).toBe(false);
    expect(presented).toHaveLength(1);
  });

  it('canary: no token in a log line or an error message', () => {
    const haystack = logs.join('');
    expect([...secrets].filter((t) => haystack.includes(t))).toEqual([]);
  });
});
