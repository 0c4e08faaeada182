// The Renewal's optional steps, the ones OAuth's refresh takes (issue 37): joiners told renewed,
// forced renewals that back off, the usable margin, a persist step that keeps the lock, a recover
// after a failed fetch, final errors and a pending state resumed first. The defaults are
// renewer.test.ts's. A real file store in a temp folder; the token clock is the test's.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProxyError } from '../../src/errors/index.ts';
import type { ReleaseRefreshLock } from '../../src/credentials/issuing/refresh-lock.ts';
import type { RenewalCore } from '../../src/credentials/issuing/renewal.ts';
import { type Renewal, Renewer } from '../../src/credentials/issuing/renewer.ts';
import { Store } from '../../src/credentials/store/index.ts';

interface Held {
  token: string;
  expiresAt: number;
  issuedAt: string;
}

const HOUR = 3_600_000;

describe('Renewer: the options a Renewal may set', () => {
  let dir: string;
  let store: Store;
  let now: number;
  let fetches: number;
  let answer: () => Promise<Held>;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyway-renewer-options-'));
    store = await Store.open(join(dir, 'store.json'), randomBytes(32));
    now = Date.parse('2026-11-25T00:00:00Z');
    fetches = 0;
    answer = async () => ({ token: `t${fetches}`, expiresAt: now + HOUR, issuedAt: new Date(now).toISOString() });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const renewer = () => new Renewer({ store, lockDir: join(dir, 'locks'), timeoutMs: 2_000, now: () => now });

  const core: () => RenewalCore<Held> = () => ({
    grantId: 'g',
    stored: () => store.get<Held>('held:g'),
    isFor: () => true,
    expiresAt: (h) => h.expiresAt,
    issuedAt: (h) => h.issuedAt,
    renewBeforeMs: 5 * 60_000,
    fetch: async () => {
      fetches++;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return answer();
    },
    failed: (err) => (err instanceof ProxyError ? err : new ProxyError('token_refresh_failed', `could not renew: ${(err as Error).message}`)),
    storeDown: (err) => new ProxyError('token_refresh_failed', 'the store is down', { cause: err }),
    log: { renewed: 'renewed', failed: 'renewal failed', fields: () => ({}) },
  });

  const renewal = (options: Partial<RenewalCore<Held>> = {}): Renewal<Held> => ({
    ...core(),
    ...options,
    save: (draft, next) => draft.set('held:g', next),
    unsaved: 'fail',
  });

  const failing = () => {
    answer = async () => {
      throw new Error('the endpoint is down');
    };
  };

  it('joinersShareRenewed: every caller that waited on the renewal is told renewed', async () => {
    const r = renewer();
    const results = await Promise.all(Array.from({ length: 5 }, () => r.get(renewal({ joinersShareRenewed: true }))));
    expect(fetches).toBe(1);
    expect(results.every((x) => x.renewed)).toBe(true);
  });

  it('forcedBacksOff: a forced renewal during the backoff throws its error without a fetch, and a failed one starts a backoff', async () => {
    const r = renewer();
    const backing = renewal({ forcedBacksOff: true });
    await r.get(backing);
    now += HOUR - 4 * 60_000; // due for renewal, still valid for 4 minutes
    failing();
    await expect(r.renewNow(backing)).rejects.toThrow(/endpoint is down/);
    expect(fetches).toBe(2);
    await expect(r.renewNow(backing)).rejects.toThrow(/endpoint is down/);
    expect(fetches).toBe(2);
    // The request path is backing off too: the held state, no fetch.
    expect(await r.get(backing)).toMatchObject({ state: { token: 't1' }, renewed: false });
    expect(fetches).toBe(2);
  });

  it('usableMarginMs 0: a state is handed out until it expires, and a short-lived answer is taken', async () => {
    const r = renewer();
    const notExpired = renewal({ usableMarginMs: 0 });
    await r.get(notExpired);
    now += HOUR - 30_000; // 30 s left
    failing();
    expect(await r.get(notExpired)).toMatchObject({ state: { token: 't1' }, renewed: false });
    answer = async () => ({ token: 'short', expiresAt: now + 30_000, issuedAt: new Date(now).toISOString() });
    now += 2_000; // past the backoff
    expect(await r.renewNow(notExpired)).toMatchObject({ state: { token: 'short' }, renewed: true });
  });

  it('persist: runs under the lock instead of the save; a state kept with the lock starts no backoff', async () => {
    const r = renewer();
    let kept: ReleaseRefreshLock | undefined;
    const persisted: Renewal<Held> = {
      ...core(),
      persist: async (_next, _from, keepLock) => {
        kept = keepLock();
        throw new ProxyError('token_refresh_failed', 'kept, not saved');
      },
    };
    await expect(r.get(persisted)).rejects.toThrow(/kept, not saved/);
    expect(kept).toBeDefined();
    expect(store.get('held:g')).toBeUndefined();
    await kept!();
    // No backoff: the next request fetches again, and the lock it takes is free.
    await expect(r.get(persisted)).rejects.toThrow(/kept, not saved/);
    expect(fetches).toBe(2);
    await kept!();
  });

  it('recover: a state found after a failed fetch is used as not renewed; final: an error passed on as it is, with no backoff', async () => {
    const r = renewer();
    failing();
    const found = { token: 'theirs', expiresAt: now + HOUR, issuedAt: new Date(now).toISOString() };
    expect(await r.get(renewal({ recover: async () => found }))).toEqual({ state: found, renewed: false });
    const refused = new ProxyError('grant_needs_reconnect', 'refused');
    const final = renewal({ recover: async () => Promise.reject(refused), final: (err) => err === refused });
    await expect(r.get(final)).rejects.toBe(refused);
    await expect(r.get(final)).rejects.toBe(refused);
    expect(fetches).toBe(3);
  });

  it('pending: a state resumed before anything else; one still waiting hands out a usable state, or fails', async () => {
    const r = renewer();
    const resumed = { token: 'resumed', expiresAt: now + HOUR, issuedAt: new Date(now).toISOString() };
    expect(await r.get(renewal({ pending: async () => ({ state: resumed, renewed: true }) }))).toEqual({ state: resumed, renewed: true });
    expect(fetches).toBe(0);
    const waiting = renewal({ pending: async () => Promise.reject(new ProxyError('token_refresh_failed', 'still saving')) });
    await expect(r.get(waiting)).rejects.toThrow(/still saving/);
    await r.get(renewal());
    now += HOUR - 4 * 60_000;
    expect(await r.get(waiting)).toMatchObject({ state: { token: 't1' }, renewed: false });
    await expect(r.renewNow(waiting)).rejects.toThrow(/still saving/);
    expect(fetches).toBe(1);
  });
  // A request that comes while a forced renewal runs (the upstream refused the held state, or
  // `keyway refresh`) waits for the new state rather than carry the one just refused; if that
  // renewal fails, the held state is judged as usual, so a provider that is down fails no request
  // a valid state can serve.
  it('a request during a forced renewal waits for the new state instead of the one the upstream refused', async () => {
    const r = renewer();
    expect((await r.get(renewal())).state.token).toBe('t1');
    now += 1000; // a renewal asked for now is met by a state fetched since, not by t1
    const refused = r.afterRejection(renewal(), (held) => held.token === 't1');
    expect((await r.get(renewal())).state.token).toBe('t2');
    expect((await refused).state.token).toBe('t2');
    expect(fetches).toBe(2);
  });

  it('a request during a forced renewal that fails gets the held state (the provider is down)', async () => {
    const r = renewer();
    await r.get(renewal());
    now += 1000;
    failing();
    const forced = Promise.resolve(r.renewNow(renewal())).catch((err: Error) => err);
    expect((await r.get(renewal())).state.token).toBe('t1');
    expect(await forced).toBeInstanceOf(ProxyError);
  });
});
