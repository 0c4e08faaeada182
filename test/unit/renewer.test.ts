// The Renewer, the lifecycle OAuth refreshes, minted tokens and AWS role credentials share (issue 37): one fetch per
// grant however many callers wait, the store re-read under the lock (a second Renewer on the same
// store file stands in for another process), backoff with the still-usable window, a renewal asked
// for now, and what happens to a state the store will not take. A real file store in a temp folder;
// the token clock is the test's.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeywayError, ProxyError } from '../../src/errors/index.ts';
import { type Renewal, Renewer, STILL_USABLE_MS } from '../../src/credentials/issuing/renewer.ts';
import { renewFloorOf } from '../../src/credentials/issuing/renewal.ts';
import { Store } from '../../src/credentials/store/index.ts';

interface Held {
  token: string;
  expiresAt: number;
  issuedAt: string;
  renewedOn401At?: number | undefined;
}

const HOUR = 3_600_000;

describe('Renewer', () => {
  let dir: string;
  let key: Buffer;
  let store: Store;
  let now: number;
  let fetches: number;
  let answer: () => Promise<Held>;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyway-renewer-'));
    key = randomBytes(32);
    store = await Store.open(join(dir, 'store.json'), key);
    now = Date.parse('2026-11-25T00:00:00Z');
    fetches = 0;
    answer = async () => ({ token: `t${fetches}`, expiresAt: now + HOUR, issuedAt: new Date(now).toISOString() });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const renewer = (on = store) => new Renewer({ store: on, lockDir: join(dir, 'locks'), timeoutMs: 2_000, now: () => now });

  const renewal = (on: Pick<Store, 'get'> = store, unsaved: 'memory' | 'fail' = 'fail'): Renewal<Held> => ({
    grantId: 'g',
    stored: () => on.get<Held>('held:g'),
    isFor: () => true,
    expiresAt: (h) => h.expiresAt,
    issuedAt: (h) => h.issuedAt,
    renewBeforeMs: 5 * 60_000,
    fetch: async () => {
      fetches++;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return answer();
    },
    save: (draft, next) => draft.set('held:g', next),
    failed: (err) => (err instanceof ProxyError ? err : new ProxyError('token_refresh_failed', `could not renew: ${(err as Error).message}`)),
    storeDown: (err) => new ProxyError('token_refresh_failed', 'the store is down', { cause: err }),
    unsaved,
    log: { renewed: 'renewed', failed: 'renewal failed', fields: () => ({}) },
  });

  it('fetches once for twenty callers; only the caller that started it is told renewed', async () => {
    const r = renewer();
    const results = await Promise.all(Array.from({ length: 20 }, () => r.get(renewal())));
    expect(fetches).toBe(1);
    expect(new Set(results.map((x) => x.state.token))).toEqual(new Set(['t1']));
    expect(results.filter((x) => x.renewed)).toHaveLength(1);
    // Held and fresh: no fetch.
    expect((await r.get(renewal())).renewed).toBe(false);
    expect(fetches).toBe(1);
  });

  it('re-reads the store under the lock: what another process renewed is used, not fetched again', async () => {
    await renewer().get(renewal());
    const other = await Store.open(join(dir, 'store.json'), key);
    now += HOUR - 60_000 * 4; // inside the renewal margin for both
    const first = renewer();
    const second = renewer(other);
    await first.get(renewal());
    expect(fetches).toBe(2);
    const seen = await second.get(renewal(other));
    expect(fetches).toBe(2);
    expect(seen).toEqual({ state: expect.objectContaining({ token: 't2' }), renewed: false });
  });

  it('after a failure backs off, handing out a state still usable for a minute, and refuses once it is not', async () => {
    const r = renewer();
    await r.get(renewal());
    now += HOUR - 4 * 60_000; // due for renewal, still valid for 4 minutes
    answer = async () => {
      throw new Error('the endpoint is down');
    };
    expect(await r.get(renewal())).toMatchObject({ state: { token: 't1' }, renewed: false });
    expect(fetches).toBe(2);
    // Backing off: no fetch for the next second.
    await r.get(renewal());
    expect(fetches).toBe(2);
    now += 4 * 60_000 - STILL_USABLE_MS + 1; // less than a minute left, and past the backoff
    await expect(r.get(renewal())).rejects.toThrow(/could not renew: the endpoint is down/);
  });

  it('a renewal asked for now skips the backoff and fails to its caller, each time', async () => {
    const r = renewer();
    await r.get(renewal());
    answer = async () => {
      throw new Error('refused');
    };
    await expect(r.renewNow(renewal())).rejects.toThrow(/refused/);
    await expect(r.renewNow(renewal())).rejects.toThrow(/refused/);
    expect(fetches).toBe(3);
  });

  it('a state the store will not take: used from memory (memory), or a failure (fail)', async () => {
    // The re-read under the lock passes (it writes nothing); a write is refused, as a full disk would.
    const broken: Pick<Store, 'get' | 'update'> = {
      get: (id) => store.get(id),
      update: (fn) =>
        store.update((draft) =>
          fn({
            get: (id) => draft.get(id),
            entries: (prefix) => draft.entries(prefix),
            delete: (id) => draft.delete(id),
            set: () => {
              throw new KeywayError('store_corrupt', 'the disk is full');
            },
          }),
        ),
    };
    const on = (unsaved: 'memory' | 'fail') => ({
      renewer: new Renewer({ store: broken, lockDir: join(dir, 'locks'), timeoutMs: 2_000, now: () => now }),
      renewal: renewal(store, unsaved),
    });
    const memory = on('memory');
    expect(await memory.renewer.get(memory.renewal)).toMatchObject({ state: { token: 't1' }, renewed: true });
    expect(memory.renewer.held(memory.renewal)?.token).toBe('t1');
    expect(store.get('held:g')).toBeUndefined();
    // Held in memory and fresh: no second fetch.
    expect(await memory.renewer.get(memory.renewal)).toMatchObject({ state: { token: 't1' }, renewed: false });
    expect(fetches).toBe(1);
    const fail = on('fail');
    await expect(fail.renewer.get(fail.renewal)).rejects.toThrow(/could not renew: the disk is full/);
    expect(fail.renewer.held(fail.renewal)).toBeUndefined();
  });

  it('refuses an answer that expires within the minute', async () => {
    answer = async () => ({ token: 'short', expiresAt: now + 30_000, issuedAt: new Date(now).toISOString() });
    await expect(renewer().get(renewal())).rejects.toThrow(/expires at .* too soon to use/);
  });
  it('renews for a 401 at most once per renew floor, across processes; a renewal for expiry carries the floor over', async () => {
    const floored = (on: Pick<Store, 'get'> = store, ms = 30_000): Renewal<Held> => ({ ...renewal(on), renewFloor: renewFloorOf<Held>(ms) });
    const r = renewer();
    await r.get(floored());
    const refusedWith = (token: string) => (h: Held) => h.token === token;
    // The first 401: renewed, and the new state records when.
    const started = now;
    expect(await r.afterRejection(floored(), refusedWith('t1'))).toMatchObject({ state: { token: 't2', renewedOn401At: started }, renewed: true });
    // Its token refused too, 29 s on: no fetch, the refused state back, floored.
    now += 29_000;
    expect(await r.afterRejection(floored(), refusedWith('t2'))).toMatchObject({ state: { token: 't2' }, renewed: false, floored: true });
    // Another process on the store: the floor is in the state it reads under the lock.
    const other = await Store.open(join(dir, 'store.json'), key);
    expect(await renewer(other).afterRejection(floored(other), refusedWith('t2'))).toMatchObject({ state: { token: 't2' }, floored: true });
    expect(fetches).toBe(2);
    // A renewal for expiry carries the floor's start over (it opens no floor of its own); past the floor, a 401 renews again.
    now += HOUR - 5 * 60_000;
    expect(await r.get(floored())).toMatchObject({ state: { token: 't3', renewedOn401At: started }, renewed: true });
    expect(await r.afterRejection(floored(), refusedWith('t3'))).toMatchObject({ state: { token: 't4' }, renewed: true });
    // A floor of 0: every 401 renews.
    expect(await r.afterRejection(floored(store, 0), refusedWith('t4'))).toMatchObject({ state: { token: 't5' }, renewed: true });
    expect(fetches).toBe(5);
    other.close();
  });
});
