// A request that comes while a forced renewal runs (the upstream refused the held state, or
// `keyway refresh`): it waits for the new state rather than carry the one just refused; if that
// renewal fails, the held state is judged as usual, so a provider that is down fails no request a
// valid state can serve. A real file store in a temp folder; the token clock is the test's.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProxyError } from '../../src/errors/index.ts';
import { type Renewal, Renewer } from '../../src/credentials/providers/renewer.ts';
import { Store } from '../../src/credentials/store/index.ts';

interface Held {
  token: string;
  expiresAt: number;
  issuedAt: string;
}

const HOUR = 3_600_000;

describe('Renewer: a request during a forced renewal', () => {
  let dir: string;
  let store: Store;
  let now: number;
  let fetches: number;
  let fail: boolean;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyway-renewer-forced-'));
    store = await Store.open(join(dir, 'store.json'), randomBytes(32));
    now = Date.parse('2026-11-25T00:00:00Z');
    fetches = 0;
    fail = false;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const renewal: Renewal<Held> = {
    grantId: 'g',
    stored: () => store.get<Held>('held:g'),
    isFor: () => true,
    expiresAt: (h) => h.expiresAt,
    issuedAt: (h) => h.issuedAt,
    renewBeforeMs: 5 * 60_000,
    fetch: async () => {
      fetches++;
      await new Promise((resolve) => setTimeout(resolve, 30));
      if (fail) throw new Error('the provider is down');
      return { token: `t${fetches}`, expiresAt: now + HOUR, issuedAt: new Date(now + fetches).toISOString() };
    },
    save: (draft, next) => draft.set('held:g', next),
    failed: (err) => new ProxyError('token_refresh_failed', `could not renew: ${(err as Error).message}`),
    storeDown: (err) => new ProxyError('token_refresh_failed', 'the store is down', { cause: err }),
    unsaved: 'fail',
    log: { renewed: 'renewed', failed: 'renewal failed', fields: () => ({}) },
  };

  const renewer = () => new Renewer<Held>({ store, lockDir: join(dir, 'locks'), timeoutMs: 2_000, now: () => now });

  it('waits for the new state instead of the one the upstream refused', async () => {
    const r = renewer();
    expect((await r.get(renewal)).state.token).toBe('t1');
    now += 1000; // a renewal asked for now is met by a state fetched since, not by t1
    const refused = r.afterRejection(renewal, (held) => held.token === 't1');
    // The held t1 is fresh, but it was just refused: the request joins the renewal.
    const during = await r.get(renewal);
    expect(during.state.token).toBe('t2');
    expect((await refused).state.token).toBe('t2');
    expect(fetches).toBe(2);
  });

  it('gets the held state when the forced renewal fails (the provider is down)', async () => {
    const r = renewer();
    await r.get(renewal);
    now += 1000;
    fail = true;
    const forced = Promise.resolve(r.renewNow(renewal)).catch((err: Error) => err);
    const during = await r.get(renewal);
    expect(during.state.token).toBe('t1');
    expect(await forced).toBeInstanceOf(ProxyError);
  });
});
