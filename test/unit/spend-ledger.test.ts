// The spend ledger (issue 63) on a real file store in a temp folder: adds counted in memory at once
// and in the store after one coalesced update, budgets checked against both (usd and tokens; hour,
// day and month; `*` selectors), periods rolling over on the test's clock, a warning given once per
// threshold and period even across two processes, counts surviving a restart, pruning, a failing
// store losing nothing, and what the ledger's guard does with counts nobody should send it.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Periods, recordIdOf, SpendIds } from '../../src/spend/ledger/keys.ts';
import { SpendLedger } from '../../src/spend/ledger/ledger.ts';
import type { BudgetConfig } from '../../src/config/spend.ts';
import { Store } from '../../src/credentials/store/index.ts';
import { budgetKey, periodOf, scopeValueOf } from '../../src/spend/core/budgets.ts';
import type { SpendEntry, SpendScope } from '../../src/spend/core/ledger.ts';
import { MAX_MODEL_NAMES, OTHER_MODEL } from '../../src/spend/core/model-name.ts';
import { budgetRecordId, type SpendRecord, spendRecordId } from '../../src/spend/core/records.ts';
import { slack } from '../helpers/load.ts';

const T0 = new Date('2026-11-26T22:10:00Z');

const budget = (b: Partial<BudgetConfig> & Pick<BudgetConfig, 'limit'>): BudgetConfig => ({ name: 'budgets[0]', per: 'day', over: 'refuse', ...b });

function entry(scope: Partial<SpendScope>, tokens: [number, number], cost: number | null, at = T0, model = 'claude-sonnet-4-5'): SpendEntry {
  return {
    agent: 'bot',
    grant: 'anthropic',
    end_user: null,
    ...scope,
    at,
    reading: { usage: { model, input_tokens: tokens[0], output_tokens: tokens[1] }, basis: 'reported' },
    cost_usd: cost,
  };
}

const scopeOf = (s: Partial<SpendScope> = {}): SpendScope => ({ agent: 'bot', grant: 'anthropic', end_user: null, ...s });

/** The store as the ledger sees it, with its updates counted (and made to fail, or wait, on demand). */
function watched(store: Store) {
  let updates = 0;
  let inFlight = 0;
  let most = 0;
  let failing = false;
  let gate: Promise<void> | undefined;
  return {
    get: store.get.bind(store),
    update: (async (fn) => {
      updates++;
      inFlight++;
      most = Math.max(most, inFlight);
      try {
        if (failing) throw new Error('store down');
        const result = await store.update(fn);
        // The store's memory already holds the write here: a gate keeps the ledger from hearing so.
        await gate;
        return result;
      } finally {
        inFlight--;
      }
    }) as Store['update'],
    updates: () => updates,
    most: () => most,
    fail: (on: boolean) => {
      failing = on;
    },
    hold: () => {
      let open!: () => void;
      gate = new Promise((r) => {
        open = r;
      });
      return () => {
        gate = undefined;
        open();
      };
    },
  };
}

describe('spend ledger', () => {
  let dir: string;
  let key: Buffer;
  let store: Store;
  let now: Date;
  const ledgers: SpendLedger[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyway-spend-'));
    key = randomBytes(32);
    store = await Store.open(join(dir, 'store.json'), key);
    now = T0;
  });
  afterEach(async () => {
    for (const l of ledgers.splice(0)) await l.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  const ledger = (budgets: readonly BudgetConfig[], on: Pick<Store, 'get' | 'update'> = store) => {
    const l = new SpendLedger({ store: on, budgets: () => budgets, now: () => now });
    ledgers.push(l);
    return l;
  };

  it('keeps at most MAX_MODEL_NAMES model records per agent per day, the rest under `_other`, every answer counted', async () => {
    const l = ledger([]);
    for (let i = 0; i < 100; i++) l.add(entry({}, [10, 1], null, T0, i % 2 === 0 ? `made-up-${i}` : `m${i}-${'x'.repeat(8_000)}`));
    l.add(entry({ agent: 'other' }, [10, 1], null, T0, 'made-up-0'));
    await l.flush();
    const mine = store.entries<SpendRecord>('spend:').filter(([id]) => id.includes(':bot:'));
    expect(mine.length).toBe(MAX_MODEL_NAMES + 1);
    for (const [id] of mine) expect(id.length).toBeLessThan(200);
    expect(mine.reduce((sum, [, r]) => sum + r.requests, 0)).toBe(100);
    expect(store.get<SpendRecord>(spendRecordId('2026-11-26T22', 'bot', 'anthropic', null, OTHER_MODEL))?.requests).toBe(100 - MAX_MODEL_NAMES);
    expect(store.get<SpendRecord>(spendRecordId('2026-11-26T22', 'other', 'anthropic', null, 'made-up-0'))?.requests).toBe(1);
  });

  it('counts tokens and dollars at once, refuses at the limit, leaves another agent alone, and writes exact records', async () => {
    const tokens = budget({ name: 'budgets[0]', agent: 'bot', limit: { tokens: 1000 } });
    const usd = budget({ name: 'budgets[1]', agent: 'bot', limit: { usd: 0.3 } });
    const l = ledger([tokens, usd]);
    l.add(entry({}, [400, 200], 0.1));
    let verdict = await l.check(scopeOf(), now);
    expect(verdict.over).toBeUndefined();
    l.add(entry({}, [300, 100], 0.1));
    verdict = await l.check(scopeOf(), now);
    expect(verdict.over).toMatchObject({ budget: tokens, used: 1000, limit: 1000, resets_at: new Date('2026-11-27T00:00:00Z') });
    expect((await l.check(scopeOf({ agent: 'other' }), now)).over).toBeUndefined();
    l.add(entry({ agent: 'other' }, [5000, 5000], 10));
    l.add(entry({}, [0, 0], 0.1));
    // Both over: the first in the config's order is named.
    expect((await l.check(scopeOf(), now)).over?.budget).toBe(tokens);
    expect((await ledger([usd]).check(scopeOf(), now)).over).toBeUndefined(); // a fresh process: nothing in the store yet
    await l.flush();
    const fresh = ledger([usd]);
    expect((await fresh.check(scopeOf(), now)).over).toMatchObject({ budget: usd, limit: 0.3 });
    expect((await fresh.check(scopeOf(), now)).over?.used).toBeCloseTo(0.3, 12);
    expect(store.get<SpendRecord>(spendRecordId('2026-11-26T22', 'bot', 'anthropic', null, 'claude-sonnet-4-5'))).toEqual({
      input_tokens: 700,
      output_tokens: 300,
      cached_input_tokens: 0,
      cache_write_tokens: 0,
      cost_usd: expect.closeTo(0.3, 12),
      requests: 3,
      unpriced: 0,
      unknown: 0,
      partial: 0,
      fallback: 0,
      estimated: 0,
    });
  });

  it('an hour budget rolls over at the hour, a day budget at midnight, a month budget at the month (UTC)', async () => {
    const hour = budget({ name: 'h', per: 'hour', limit: { tokens: 100 } });
    const day = budget({ name: 'd', per: 'day', limit: { tokens: 200 } });
    const month = budget({ name: 'm', per: 'month', limit: { tokens: 300 } });
    const l = ledger([hour, day, month]);
    l.add(entry({}, [100, 0], null));
    expect((await l.check(scopeOf(), now)).over?.budget).toBe(hour);
    const nextHour = new Date('2026-11-26T23:00:00Z');
    expect((await l.check(scopeOf(), nextHour)).over).toBeUndefined();
    l.add(entry({}, [100, 0], null, nextHour));
    expect((await l.check(scopeOf(), nextHour)).over?.budget).toBe(hour);
    expect((await l.check(scopeOf(), new Date('2026-11-26T23:59:59.999Z'))).over?.budget).toBe(hour);
    const nextDay = new Date('2026-11-27T00:00:00Z');
    l.add(entry({}, [50, 0], null, nextDay));
    const standing = await l.check(scopeOf(), nextDay);
    expect(standing.over).toBeUndefined();
    const oneAm = new Date('2026-11-27T01:00:00Z');
    l.add(entry({}, [50, 0], null, oneAm));
    expect((await l.check(scopeOf(), oneAm)).over?.budget).toBe(month);
    expect((await l.check(scopeOf(), new Date('2026-12-01T00:00:00Z'))).over).toBeUndefined();
    await l.flush();
    expect(store.get(budgetRecordId(budgetKey(month, ''), '2026-11'))).toEqual({ tokens: 300, usd: 0 });
    expect(store.get(budgetRecordId(budgetKey(day, ''), '2026-11-26'))).toEqual({ tokens: 200, usd: 0 });
    expect(store.get(budgetRecordId(budgetKey(day, ''), '2026-11-27'))).toEqual({ tokens: 100, usd: 0 });
  });

  it('a `*` selector counts each agent apart; an absent end user never matches `end_user: "*"`; two budgets that count alike add once', async () => {
    const each = budget({ name: 'each', agent: '*', limit: { tokens: 100 } });
    const users = budget({ name: 'users', end_user: '*', limit: { tokens: 100 } });
    const twin = budget({ name: 'twin', agent: '*', limit: { tokens: 500 } });
    const l = ledger([each, users, twin]);
    l.add(entry({ agent: 'a' }, [100, 0], null));
    l.add(entry({ agent: 'b' }, [60, 0], null));
    l.add(entry({ agent: 'b', end_user: 'alice' }, [10, 0], null));
    expect((await l.check(scopeOf({ agent: 'a' }), now)).over).toMatchObject({ budget: each, scope: 'agent=a', used: 100 });
    expect((await l.check(scopeOf({ agent: 'b' }), now)).over).toBeUndefined();
    expect((await l.check(scopeOf({ agent: 'b', end_user: 'alice' }), now)).over).toBeUndefined();
    // The anonymous agent (null) is not "each agent": the budget does not apply to it at all.
    l.add(entry({ agent: null }, [1000, 0], null));
    expect((await l.check(scopeOf({ agent: null }), now)).over).toBeUndefined();
    await l.flush();
    const id = (b: BudgetConfig, v: string) => budgetRecordId(budgetKey(b, v), '2026-11-26');
    expect(store.get(id(each, 'agent=b'))).toEqual({ tokens: 70, usd: 0 });
    // twin and each share the key (same selectors, period and unit): one record, added to once.
    expect(id(twin, 'agent=b')).toBe(id(each, 'agent=b'));
    expect(store.get(id(users, 'end_user=alice'))).toEqual({ tokens: 10, usd: 0 });
    expect(store.entries('budget:').filter(([k]) => k.includes('end_user='))).toHaveLength(1);
  });

  it('warns once per threshold and period, for the whole keyway: a second process on the store does not warn again', async () => {
    const b = budget({ agent: 'bot', limit: { tokens: 1000 }, warn_at: 0.8 });
    const l = ledger([b]);
    l.add(entry({}, [700, 0], null));
    expect((await l.check(scopeOf(), now)).warn).toEqual([]);
    l.add(entry({}, [100, 0], null));
    const [first, second] = await Promise.all([l.check(scopeOf(), now), l.check(scopeOf(), now)]);
    expect(first.warn.map((w) => w.used)).toEqual([800]);
    expect(second.warn).toEqual([]);
    expect((await l.check(scopeOf(), now)).warn).toEqual([]);
    // Another process on the store (opened now: it reads the mark with the count).
    const other = ledger([b], await Store.open(join(dir, 'store.json'), key));
    expect((await other.check(scopeOf(), now)).warn).toEqual([]);
    // A new day is a new period: warned again, once.
    const tomorrow = new Date('2026-11-27T09:00:00Z');
    l.add(entry({}, [900, 0], null, tomorrow));
    expect((await l.check(scopeOf(), tomorrow)).warn).toHaveLength(1);
    expect((await other.check(scopeOf(), tomorrow)).warn).toEqual([]);
    // A reload that raises the limit is a new threshold: warned when it is crossed.
    const raised = budget({ agent: 'bot', limit: { tokens: 1100 }, warn_at: 0.8 });
    const reloaded = ledger([raised], await Store.open(join(dir, 'store.json'), key));
    expect((await reloaded.check(scopeOf(), tomorrow)).warn).toMatchObject([{ used: 900, limit: 1100 }]);
  });

  it('counts survive a restart: flushed at close, read back by a new ledger on a newly opened store', async () => {
    const b = budget({ agent: 'bot', limit: { usd: 1 } });
    const l = ledger([b]);
    // Ten times 0.1 is 0.9999999999999999 in floating point: a $1 budget is still reached (dollars compare to the nano-dollar).
    for (let i = 0; i < 10; i++) l.add(entry({}, [10, 10], 0.1));
    await l.close();
    const reopened = await Store.open(join(dir, 'store.json'), key);
    const again = ledger([b], reopened);
    const verdict = await again.check(scopeOf(), now);
    expect(verdict.over?.used).toBe(1);
    expect(reopened.get<SpendRecord>(spendRecordId('2026-11-26T22', 'bot', 'anthropic', null, 'claude-sonnet-4-5'))?.requests).toBe(10);
  });

  it('coalesces: many adds are a few updates, never two at once; a check in the middle counts nothing twice', async () => {
    const b = budget({ agent: 'bot', limit: { tokens: 1_000_000 } });
    const w = watched(store);
    const budgets = [b];
    const l = ledger(budgets, w);
    for (let i = 0; i < 500; i++) l.add(entry({}, [1, 1], null));
    const open = w.hold();
    const flushing = l.flush();
    for (let i = 0; i < 500; i++) l.add(entry({}, [1, 1], null));
    const more = l.flush();
    const again = l.flush();
    // The first update has written (the store's memory holds it) but not returned: still exact.
    // Waited for, not slept on: on a busy machine the write lands later than any fixed pause.
    await vi.waitFor(() => expect(store.get(budgetRecordId(budgetKey(b, ''), '2026-11-26'))).toEqual({ tokens: 1000, usd: 0 }), {
      timeout: slack(5_000),
      interval: 5,
    });
    // Another process reads what the store holds; this one adds what it has pending, each once.
    const theirs = [b];
    expect(await usedFor(ledger(theirs, w), theirs, b)).toBe(1000);
    expect(await usedFor(l, budgets, b)).toBe(2000);
    open();
    await Promise.all([flushing, more, again]);
    expect(w.updates()).toBe(2);
    expect(w.most()).toBe(1);
    expect(store.get(budgetRecordId(budgetKey(b, ''), '2026-11-26'))).toEqual({ tokens: 2000, usd: 0 });
    expect(await usedFor(l, budgets, b)).toBe(2000);
  });

  it('a failed update loses nothing: the counts stay pending, are checked, and go with the next update', async () => {
    const b = budget({ agent: 'bot', limit: { tokens: 100 } });
    const w = watched(store);
    const budgets = [b];
    const l = ledger(budgets, w);
    l.add(entry({}, [60, 0], 0.5));
    w.fail(true);
    await expect(l.flush()).rejects.toThrow('store down');
    l.add(entry({}, [40, 0], 0.5));
    expect((await l.check(scopeOf(), now)).over?.used).toBe(100);
    await expect(l.flush()).rejects.toThrow('store down');
    w.fail(false);
    await l.flush();
    expect(store.get(budgetRecordId(budgetKey(b, ''), '2026-11-26'))).toEqual({ tokens: 100, usd: 1 });
    expect(store.get<SpendRecord>(spendRecordId('2026-11-26T22', 'bot', 'anthropic', null, 'claude-sonnet-4-5'))).toMatchObject({
      input_tokens: 100,
      requests: 2,
      cost_usd: 1,
    });
    expect(await usedFor(l, budgets, b)).toBe(100);
  });

  it('a warning claim that fails warns nobody and is tried again at the next check', async () => {
    const b = budget({ agent: 'bot', limit: { tokens: 100 }, warn_at: 0.5 });
    const w = watched(store);
    const l = ledger([b], w);
    l.add(entry({}, [60, 0], null));
    w.fail(true);
    expect((await l.check(scopeOf(), now)).warn).toEqual([]);
    w.fail(false);
    expect((await l.check(scopeOf(), now)).warn).toHaveLength(1);
    expect((await l.check(scopeOf(), now)).warn).toEqual([]);
  });

  it('admits whole non-negative counts and a finite cost; anything else is counted as unknown usage or unpriced, never written as NaN', async () => {
    const b = budget({ agent: 'bot', limit: { tokens: 100 } });
    const l = ledger([b]);
    const odd = (usage: Record<string, unknown>, cost: unknown): SpendEntry =>
      ({ ...entry({}, [0, 0], null), reading: { usage: { model: 'm', ...usage }, basis: 'reported' }, cost_usd: cost }) as SpendEntry;
    l.add(odd({ input_tokens: Number.NaN, output_tokens: 5 }, 0.1));
    l.add(odd({ input_tokens: -5, output_tokens: 5 }, null));
    l.add(odd({ input_tokens: 1.5, output_tokens: 5 }, null));
    l.add(odd({ input_tokens: '7', output_tokens: 5 }, null));
    l.add(odd({ input_tokens: 5, output_tokens: 5 }, Number.POSITIVE_INFINITY));
    l.add(odd({ input_tokens: 5, output_tokens: 5 }, -1));
    l.add({ ...entry({}, [0, 0], null), reading: { usage: undefined, basis: 'partial' } });
    await l.flush();
    const record = store.get<SpendRecord>(spendRecordId('2026-11-26T22', 'bot', 'anthropic', null, 'm'));
    expect(record).toEqual({
      input_tokens: 10,
      output_tokens: 10,
      cached_input_tokens: 0,
      cache_write_tokens: 0,
      cost_usd: 0,
      requests: 2,
      unpriced: 2,
      unknown: 0,
      partial: 0,
      fallback: 0,
      estimated: 0,
    });
    // The four with an odd count are unknown usage (which names no model); the two with an odd cost keep their tokens, unpriced.
    expect(store.get<SpendRecord>(spendRecordId('2026-11-26T22', 'bot', 'anthropic', null, null))).toMatchObject({
      requests: 5,
      unknown: 5,
      partial: 1,
      fallback: 0,
      estimated: 0,
      input_tokens: 0,
    });
    expect(store.get(budgetRecordId(budgetKey(b, ''), '2026-11-26'))).toEqual({ tokens: 20, usd: 0 });
  });

  it('prunes spend records past SPEND_KEPT_DAYS and budget records of periods ended two days ago, inside a normal flush, at most hourly; keeps what it cannot read', async () => {
    const day = budget({ agent: 'bot', limit: { tokens: 100 } });
    await store.update((d) => {
      d.set(spendRecordId('2026-09-20T10', 'bot', 'anthropic', null, 'm'), { requests: 1 });
      d.set(spendRecordId('2026-09-30T10', 'bot', 'anthropic', null, 'm'), { requests: 1 });
      d.set(budgetRecordId(budgetKey(day, ''), '2026-11-25'), { tokens: 5, usd: 0 });
      d.set(budgetRecordId('all|month|usd|', '2026-10'), { tokens: 0, usd: 1 });
      d.set(budgetRecordId('all|month|usd|', '2026-11'), { tokens: 0, usd: 1 });
      d.set(budgetRecordId('all|hour|usd|', '2026-11-26T21'), { tokens: 0, usd: 1 });
      d.set('budget:something-else', { tokens: 1, usd: 1 });
      d.set('spend:not-a-spend-id', { requests: 1 });
    });
    const l = ledger([day]);
    l.add(entry({}, [1, 0], null));
    await l.flush();
    const ids = [...store.entries('spend:'), ...store.entries('budget:')].map(([id]) => id).sort();
    expect(ids).toEqual(
      [
        // Kept, and folded into its day (spend-fold.test.ts) in the same update.
        spendRecordId('2026-09-30', 'bot', 'anthropic', null, 'm'),
        spendRecordId('2026-11-26T22', 'bot', 'anthropic', null, 'claude-sonnet-4-5'),
        budgetRecordId(budgetKey(day, ''), '2026-11-26'),
        // Ended within two days (BUDGET_KEPT_AFTER_MS): a clock that jumped may come back to them.
        budgetRecordId(budgetKey(day, ''), '2026-11-25'),
        budgetRecordId('all|hour|usd|', '2026-11-26T21'),
        budgetRecordId('all|month|usd|', '2026-11'),
        'budget:something-else',
        'spend:not-a-spend-id',
      ].sort(),
    );
    // Within the hour: not scanned again. An hour on (and past a day's end): the next flush prunes.
    await store.update((d) => d.set(budgetRecordId(budgetKey(day, ''), '2026-11-20'), { tokens: 5, usd: 0 }));
    now = new Date(T0.getTime() + 30 * 60_000);
    l.add(entry({}, [1, 0], null, now));
    await l.flush();
    expect(store.get(budgetRecordId(budgetKey(day, ''), '2026-11-20'))).toBeDefined();
    now = new Date('2026-11-27T00:30:00Z');
    l.add(entry({}, [1, 0], null, now));
    await l.flush();
    expect(store.get(budgetRecordId(budgetKey(day, ''), '2026-11-20'))).toBeUndefined();
    expect(store.get(budgetRecordId(budgetKey(day, ''), '2026-11-26'))).toBeDefined();
    expect(store.get(budgetRecordId(budgetKey(day, ''), '2026-11-27'))).toEqual({ tokens: 1, usd: 0 });
  });

  it('keeps the current period through a clock that jumps ahead and comes back: the budget goes on from its count (issue 86)', async () => {
    const hourly = budget({ agent: 'bot', per: 'hour', limit: { tokens: 30 } });
    const l = ledger([hourly]);
    const real = T0;
    l.add(entry({}, [20, 0], null, real));
    await l.flush();
    // The clock an hour ahead (then a day): the hourly prune runs, and must not delete the real hour.
    for (const ahead of [3_600_000, 86_400_000]) {
      now = new Date(real.getTime() + ahead);
      l.add(entry({}, [1, 0], null, now));
      await l.flush();
    }
    expect(store.get(budgetRecordId(budgetKey(hourly, ''), periodOf('hour', real)))).toEqual({ tokens: 20, usd: 0 });
    // Corrected: the real hour's count is where it was, and the next 20 tokens pass its limit.
    now = new Date(real.getTime() + 60_000);
    l.add(entry({}, [20, 0], null, now));
    const verdict = l.check(scopeOf(), now);
    expect(verdict instanceof Promise ? await verdict : verdict).toMatchObject({ over: { used: 40 } });
  });

  it('names each budget record as spend/core/budgets.ts does (what keyway spend and the dashboard read)', () => {
    const budgets = [
      budget({ limit: { tokens: 1 } }),
      budget({ agent: '*', end_user: '*', per: 'hour', limit: { usd: 1 } }),
      budget({ grant: 'a:b,c=d|e', per: 'month', limit: { tokens: 1 } }),
      budget({ agent: 'bot', grant: '*', limit: { usd: 2 } }),
    ];
    const scopes = [scopeOf(), scopeOf({ end_user: 'al:ice,x=y', grant: 'a:b,c=d|e' }), scopeOf({ agent: 'b|o t' })];
    for (const at of [T0, new Date('2027-01-01T00:00:00Z')])
      for (const b of budgets)
        for (const s of scopes) {
          const value = scopeValueOf(b, s);
          if (value === undefined) continue;
          expect(recordIdOf(b, value, new Periods(at))).toBe(budgetRecordId(budgetKey(b, value), periodOf(b.per, at)));
        }
  });

  it('names each spend record as spendRecordId does, the cached id of a scope too, across hours (what keyway spend reads)', () => {
    const ids = new SpendIds();
    const values = [null, '', '_', 'a:b', 'a', 'b\u0000c', 'a\u0000b', 'c', 'é/ü'];
    const times = [T0, new Date('2026-11-26T22:59:59.999Z'), new Date('2026-11-26T23:00:00Z'), T0];
    for (const at of times)
      for (const agent of values)
        for (const grant of values.slice(3))
          for (const model of values) {
            // Twice each: the second answer of a scope takes the cached id.
            for (let i = 0; i < 2; i++)
              expect(ids.of(at, agent, grant, 'eu', model)).toBe(spendRecordId(at.toISOString().slice(0, 13), agent, grant, 'eu', model));
          }
  });

  it('with no budgets, a check is answered at once and the store sees only spend records', async () => {
    const l = ledger([]);
    const verdict = l.check(scopeOf(), now);
    expect(verdict).toEqual({ over: undefined, warn: [] });
    l.add(entry({}, [1, 1], 0.01));
    await l.flush();
    expect(store.entries('budget:')).toEqual([]);
    expect(store.entries('spend:')).toHaveLength(1);
  });
});

/**
 * The count a check sees for `b`'s record: asked through a budget that counts alike (so shares the
 * record) with a limit of 1, which is always over and so names what is used.
 */
async function usedFor(l: SpendLedger, list: BudgetConfig[], b: BudgetConfig): Promise<number | undefined> {
  const kept = list.splice(0, list.length, { ...b, limit: 'usd' in b.limit ? { usd: 1e-12 } : { tokens: 1 }, warn_at: undefined });
  try {
    return (await l.check(scopeOf(), T0)).over?.used;
  } finally {
    list.splice(0, list.length, ...kept);
  }
}
