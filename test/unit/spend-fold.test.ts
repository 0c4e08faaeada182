// Folding old hourly spend records into day records (issue 63), on a real file store in a temp
// folder: sums exact to the token and to 1e-6 USD; the last two full UTC days and today left hourly;
// a fold repeated, cut short, or run by two ledgers on one store at once never counts anything twice
// or loses it; what it does not understand left as it is; the reader's answers the same before and
// after; day records pruned past SPEND_KEPT_DAYS.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { foldSpend } from '../../src/spend/ledger/fold.ts';
import { SpendLedger } from '../../src/spend/ledger/ledger.ts';
import { pruneSpend } from '../../src/spend/ledger/prune.ts';
import { Store } from '../../src/credentials/store/index.ts';
import { spendReport } from '../../src/operations/spend.ts';
import { spendSince } from '../../src/operations/spend-window.ts';
import { ExactSum } from '../../src/spend/core/exact-sum.ts';
import type { SpendEntry } from '../../src/spend/core/ledger.ts';
import { type SpendRecord, spendRecordId } from '../../src/spend/core/records.ts';
import { type PlantedSpend, plantSpend } from '../helpers/spend-records.ts';

// Today is 2026-11-26: the 24th and 25th are the two full days kept hourly; the 23rd and before fold.
const NOW = new Date('2026-11-26T22:10:00Z');
const COUNTS = ['requests', 'input_tokens', 'output_tokens', 'cached_input_tokens', 'cache_write_tokens', 'unpriced', 'unknown', 'partial'] as const;

/** Hours across 2026-11-19 .. 2026-11-26 for two agents and two models, with prices that do not add up in binary. */
function hours(): PlantedSpend[] {
  const out: PlantedSpend[] = [];
  for (let day = 19; day <= 26; day++) {
    for (let h = 0; h < 24; h += 3) {
      for (const agent of ['ci-bot', 'other']) {
        for (const model of ['claude-sonnet-4-5', 'gpt-4.1']) {
          const i = out.length;
          out.push({
            hour: `2026-11-${day}T${String(h).padStart(2, '0')}`,
            agent,
            grant: model.startsWith('gpt') ? 'openai' : 'anthropic',
            end_user: agent === 'other' ? 'alice@example.com' : null,
            model,
            requests: 1 + (i % 4),
            input_tokens: 1_000 + i * 7,
            output_tokens: 10 + i,
            cached_input_tokens: i % 5,
            cache_write_tokens: i % 3,
            cost_usd: 0.000_123 * (i + 1) + 0.1,
            unpriced: i % 7 === 0 ? 1 : 0,
            unknown: i % 11 === 0 ? 1 : 0,
            partial: i % 13 === 0 ? 1 : 0,
            fallback: 0,
            estimated: 0,
          });
        }
      }
    }
  }
  return out;
}

function sums(planted: readonly PlantedSpend[]) {
  const out = Object.fromEntries(COUNTS.map((k) => [k, 0])) as Record<(typeof COUNTS)[number], number>;
  const cost = new ExactSum();
  for (const p of planted) {
    for (const k of COUNTS) out[k] += p[k] ?? 0;
    cost.add(p.cost_usd ?? 0);
  }
  return { ...out, cost_usd: cost.value };
}

function expectSums(got: SpendRecord, planted: readonly PlantedSpend[]): void {
  const want = sums(planted);
  for (const k of COUNTS) expect(got[k], k).toBe(want[k]);
  expect(Math.abs(got.cost_usd - want.cost_usd)).toBeLessThan(1e-6);
}

describe('folding hourly spend into days', () => {
  let dir: string;
  let key: Buffer;
  let store: Store;
  const ledgers: SpendLedger[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyway-spend-fold-'));
    key = randomBytes(32);
    store = await Store.open(join(dir, 'store.json'), key);
  });
  afterEach(async () => {
    for (const l of ledgers.splice(0)) await l.close().catch(() => undefined);
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ids = (on: Store = store) => on.entries('spend:').map(([id]) => id);
  const report = (since: string, on: Store = store) => spendReport(on, [], { since: spendSince(since, NOW, 'since'), now: NOW });

  it('sums the hours of days before the last two full UTC days into one record per day, exact; keeps the rest hourly', async () => {
    const planted = hours();
    await plantSpend(store, planted);
    const before = ['2026-11-01', '2026-11-23T13:30Z', '2026-11-24T13:30Z', '50h', '7d'].map((s) => report(s));
    const folded = await store.update((d) => foldSpend(d, NOW));
    // 19th..23rd: 5 days x 8 hours x 4 (agent, model) hour records became 5 x 4 day records.
    expect(folded).toBe(5 * 8 * 4);
    const left = ids();
    expect(left).toHaveLength(5 * 4 + 3 * 8 * 4);
    for (const id of left) {
      const period = id.split(':')[1]!;
      expect(period < '2026-11-24' ? /^\d{4}-\d{2}-\d{2}$/.test(period) : /T\d{2}$/.test(period), id).toBe(true);
    }
    for (let day = 19; day <= 23; day++) {
      for (const p of planted.filter((q) => q.hour.startsWith(`2026-11-${day}`) && q.agent === 'other' && q.model === 'gpt-4.1').slice(0, 1)) {
        const group = planted.filter((q) => q.hour.startsWith(`2026-11-${day}`) && q.agent === p.agent && q.model === p.model);
        expectSums(store.get<SpendRecord>(spendRecordId(`2026-11-${day}`, p.agent, p.grant, p.end_user ?? null, p.model))!, group);
      }
    }
    // What keyway spend answers is the same before and after, whatever the window.
    const after = ['2026-11-01', '2026-11-23T13:30Z', '2026-11-24T13:30Z', '50h', '7d'].map((s) => report(s));
    expect(after).toEqual(before);
    expectSums(after[0]!.totals, planted);
  });

  it('is idempotent: a second fold (or a second process folding) changes nothing and writes nothing', async () => {
    await plantSpend(store, hours());
    await store.update((d) => foldSpend(d, NOW));
    const file = readFileSync(join(dir, 'store.json'), 'utf8');
    const other = await Store.open(join(dir, 'store.json'), key);
    expect(await other.update((d) => foldSpend(d, NOW))).toBe(0);
    expect(await store.update((d) => foldSpend(d, NOW))).toBe(0);
    expect(readFileSync(join(dir, 'store.json'), 'utf8')).toBe(file);
    other.close();
  });

  it('adds a late hour to the day record already there, and keeps an hour of the first day kept hourly', async () => {
    const a: PlantedSpend = { hour: '2026-11-20T05', agent: 'a', grant: 'g', model: 'm', requests: 2, input_tokens: 7, cost_usd: 0.1 };
    const b: PlantedSpend = { ...a, hour: '2026-11-20T06', requests: 3, input_tokens: 11, cost_usd: 0.2 };
    await plantSpend(store, [a]);
    await store.update((d) => foldSpend(d, NOW));
    // A process whose flush failed for days, or an older keyway, writes an hour of a folded day.
    await plantSpend(store, [b, { ...a, hour: '2026-11-24T00' }]);
    expect(report('2026-11-20').totals.requests).toBe(2 + 3 + 2);
    expect(await store.update((d) => foldSpend(d, NOW))).toBe(1);
    expectSums(store.get<SpendRecord>(spendRecordId('2026-11-20', 'a', 'g', null, 'm'))!, [a, b]);
    expect(store.get(spendRecordId('2026-11-24T00', 'a', 'g', null, 'm'))).toBeDefined();
    // Midnight of the 27th: the 24th is no longer among the last two full days.
    expect(await store.update((d) => foldSpend(d, new Date('2026-11-27T00:00:00Z')))).toBe(1);
    expect(store.get(spendRecordId('2026-11-24', 'a', 'g', null, 'm'))).toMatchObject({ requests: 2, input_tokens: 7 });
  });

  it('a fold cut short writes nothing; the next one folds everything once', async () => {
    const planted = hours();
    await plantSpend(store, planted);
    const file = readFileSync(join(dir, 'store.json'), 'utf8');
    // The fold ran on the draft, then the update failed before anything was written.
    await expect(
      store.update((d) => {
        foldSpend(d, NOW);
        throw new Error('cut short');
      }),
    ).rejects.toThrow('cut short');
    expect(readFileSync(join(dir, 'store.json'), 'utf8')).toBe(file);
    expect(ids()).toHaveLength(planted.length);
    await store.update((d) => foldSpend(d, NOW));
    expectSums(report('2026-11-01').totals, planted);
  });

  it('two ledgers on one file store fold at once, each with its own counts: every count once', async () => {
    const planted = hours();
    await plantSpend(store, planted);
    const second = await Store.open(join(dir, 'store.json'), key);
    const made = [store, second].map((on) => {
      const l = new SpendLedger({ store: on, budgets: () => [], now: () => NOW });
      ledgers.push(l);
      return l;
    });
    const added: PlantedSpend[] = [];
    const entry = (i: number): SpendEntry => ({
      agent: 'ci-bot',
      grant: 'anthropic',
      end_user: null,
      // A late answer of a folded day, and today's.
      at: i % 2 ? new Date('2026-11-21T04:00:00Z') : NOW,
      reading: { usage: { model: 'claude-sonnet-4-5', input_tokens: 100 + i, output_tokens: 1 }, basis: 'reported' },
      cost_usd: 0.000_333 * i,
    });
    for (let i = 0; i < 40; i++) {
      made[i % 2]!.add(entry(i));
      added.push({ hour: '', agent: 'ci-bot', grant: 'anthropic', model: 'm', requests: 1, input_tokens: 100 + i, output_tokens: 1, cost_usd: 0.000_333 * i });
    }
    // Both due to fold (a ledger's first flush is), both at once.
    await Promise.all(made.map((l) => l.flush()));
    const all = [...planted, ...added];
    const fresh = await Store.open(join(dir, 'store.json'), key);
    expectSums(report('2026-11-01', fresh).totals, all);
    // Nothing of a folded day is left hourly.
    expect(ids(fresh).filter((id) => /^spend:2026-11-(19|2[0-3])T/.test(id))).toEqual([]);
    expect(fresh.get<SpendRecord>(spendRecordId('2026-11-21', 'ci-bot', 'anthropic', null, 'claude-sonnet-4-5'))?.requests).toBe(
      sums(planted.filter((p) => p.hour.startsWith('2026-11-21') && p.agent === 'ci-bot' && p.model === 'claude-sonnet-4-5')).requests + 20,
    );
    second.close();
    fresh.close();
  });

  it('leaves alone what it does not understand: a damaged hour, a damaged day record, an unknown field, an id it does not read', async () => {
    const odd = {
      damaged: spendRecordId('2026-11-20T01', 'a', 'g', null, 'm'),
      extra: spendRecordId('2026-11-20T02', 'b', 'g', null, 'm'),
      badDay: spendRecordId('2026-11-20', 'c', 'g', null, 'm'),
      badDayHour: spendRecordId('2026-11-20T03', 'c', 'g', null, 'm'),
    };
    await store.update((d) => {
      d.set(odd.damaged, { requests: 1, input_tokens: -4 });
      d.set(odd.extra, { requests: 1, surprise: 5 });
      d.set(odd.badDay, { requests: 'many' });
      d.set(odd.badDayHour, { requests: 2 });
      d.set('spend:2026-11-20T04:%zz:g:_:m', { requests: 1 });
      d.set('spend:2026-11-20X04:a:g:_:m', { requests: 1 });
      // Fields absent count as 0, as readers count them: folded.
      d.set(spendRecordId('2026-11-20T05', 'd', 'g', null, 'm'), { requests: 1, cost_usd: 0.5 });
    });
    expect(await store.update((d) => foldSpend(d, NOW))).toBe(1);
    expect(store.get(spendRecordId('2026-11-20', 'd', 'g', null, 'm'))).toEqual({
      requests: 1,
      cost_usd: 0.5,
      input_tokens: 0,
      output_tokens: 0,
      cached_input_tokens: 0,
      cache_write_tokens: 0,
      unpriced: 0,
      unknown: 0,
      partial: 0,
      fallback: 0,
      estimated: 0,
    });
    for (const id of [...Object.values(odd), 'spend:2026-11-20T04:%zz:g:_:m', 'spend:2026-11-20X04:a:g:_:m']) expect(store.get(id), id).toBeDefined();
    expect(store.get(odd.badDay)).toEqual({ requests: 'many' });
  });

  it('prunes a day record once the whole day is past SPEND_KEPT_DAYS, not before', async () => {
    // 62 days before 2026-11-26T22:10 is 2026-09-25T22:10: the 24th is gone, the 25th partly kept.
    await plantSpend(store, [
      { hour: '2026-09-24', agent: 'a', grant: 'g', model: 'm', requests: 1 },
      { hour: '2026-09-25', agent: 'a', grant: 'g', model: 'm', requests: 1 },
      { hour: '2026-09-25T21', agent: 'a', grant: 'g', model: 'm', requests: 1 },
      { hour: '2026-09-25T22', agent: 'a', grant: 'g', model: 'm', requests: 1 },
    ]);
    expect(await store.update((d) => pruneSpend(d, NOW))).toBe(2);
    expect(ids()).toEqual([spendRecordId('2026-09-25', 'a', 'g', null, 'm'), spendRecordId('2026-09-25T22', 'a', 'g', null, 'm')]);
  });
});
