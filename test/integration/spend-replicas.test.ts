// Spend across replicas (issue 63): two keyway replicas are two PostgresStores on one throwaway
// PostgreSQL, each with its own SpendLedger, as two `keyway start`s on store.backend postgres have.
// Their records are additive, so adding concurrently the store holds the exact sum; a check on one
// replica sees the other's counts once they are flushed and the change feed brings them; a warning
// is given by one replica only; both folding old hours into days at once count every answer once.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpendLedger } from '../../src/spend/ledger/ledger.ts';
import type { BudgetConfig } from '../../src/config/spend.ts';
import { PostgresStore } from '../../src/credentials/store/index.ts';
import { budgetKey, periodOf } from '../../src/spend/core/budgets.ts';
import type { SpendEntry, SpendScope } from '../../src/spend/core/ledger.ts';
import { spendReport } from '../../src/operations/spend.ts';
import { budgetRecordId, hourOf, type SpendRecord } from '../../src/spend/core/records.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { plantSpend } from '../helpers/spend-records.ts';

const scope: SpendScope = { agent: 'bot', grant: 'openai', end_user: 'alice' };

const entry = (tokens: number, cost: number): SpendEntry => ({
  ...scope,
  at: new Date(),
  reading: { usage: { model: 'gpt-5', input_tokens: tokens, output_tokens: 1 }, basis: 'reported' },
  cost_usd: cost,
});

describe('spend across two replicas on one PostgreSQL', () => {
  let db: TestPostgres;
  const key = randomBytes(32);
  const stores: PostgresStore[] = [];
  const ledgers: SpendLedger[] = [];

  beforeAll(async () => {
    db = await startPostgres();
  });
  afterAll(async () => {
    for (const l of ledgers) await l.close().catch(() => undefined);
    for (const s of stores) {
      s.close();
      await s.end?.();
    }
    await db?.destroy();
  });

  /** A replica: its own store connection (watching the change feed, as start does) and ledger. */
  async function replica(budgets: readonly BudgetConfig[]): Promise<{ store: PostgresStore; ledger: SpendLedger }> {
    const store = await PostgresStore.open(db.url, key);
    store.watch(() => undefined);
    stores.push(store);
    const ledger = new SpendLedger({ store, budgets: () => budgets });
    ledgers.push(ledger);
    return { store, ledger };
  }

  it('both add concurrently: the store holds the exact sum, to the token and 1e-6 USD', async () => {
    const budget: BudgetConfig = { name: 'budgets[0]', end_user: '*', limit: { usd: 1_000 }, per: 'month', over: 'refuse' };
    const [a, b] = await Promise.all([replica([budget]), replica([budget])]);
    const expected = { tokens: 0, usd: 0, requests: 0 };
    const run = async (ledger: SpendLedger, seed: number) => {
      for (let i = 0; i < 400; i++) {
        const tokens = 1 + ((i * 7919 + seed) % 997);
        const cost = tokens * 0.000_002_5 + 0.000_000_1;
        ledger.add(entry(tokens, cost));
        expected.tokens += tokens + 1;
        expected.usd += cost;
        expected.requests++;
        // Flushes of both replicas overlap: some on the timer, some asked for.
        if (i % 40 === 0) void ledger.flush().catch(() => undefined);
        if (i % 5 === 0) await new Promise((r) => setTimeout(r, 2));
      }
      await ledger.flush();
    };
    await Promise.all([run(a.ledger, 1), run(b.ledger, 2)]);
    const reader = await PostgresStore.open(db.url, key);
    stores.push(reader);
    const count = reader.get<{ tokens: number; usd: number }>(budgetRecordId(budgetKey(budget, 'end_user=alice'), periodOf('month', new Date())));
    expect(count?.tokens).toBe(expected.tokens);
    expect(Math.abs((count?.usd ?? 0) - expected.usd)).toBeLessThan(1e-6);
    const spent = reader
      .entries<SpendRecord>('spend:')
      .reduce((s, [, r]) => ({ tokens: s.tokens + r.input_tokens + r.output_tokens, usd: s.usd + r.cost_usd, requests: s.requests + r.requests }), {
        tokens: 0,
        usd: 0,
        requests: 0,
      });
    expect(spent.tokens).toBe(expected.tokens);
    expect(spent.requests).toBe(expected.requests);
    expect(Math.abs(spent.usd - expected.usd)).toBeLessThan(1e-6);
  });

  it("a check on one replica sees the other's flushed counts through the change feed; one replica warns", async () => {
    // Limit 1: over as soon as anything counts, so the verdict names the count.
    const probe: BudgetConfig = { name: 'budgets[0]', grant: 'openai', limit: { tokens: 1 }, per: 'day', over: 'refuse' };
    const [a, b] = await Promise.all([replica([probe]), replica([probe])]);
    const delays: number[] = [];
    let total = 0;
    for (let round = 0; round < 20; round++) {
      a.ledger.add(entry(9, 0));
      total += 10;
      await a.ledger.flush();
      const flushedAt = performance.now();
      // Not a timed assertion: the deadline only ends a test that would otherwise hang.
      for (;;) {
        const used = (await b.ledger.check(scope, new Date())).over?.used ?? 0;
        if (used === total) break;
        expect(used).toBeLessThan(total);
        if (performance.now() - flushedAt > 10_000) throw new Error(`replica b still sees ${used} of ${total}`);
        await new Promise((r) => setTimeout(r, 2));
      }
      delays.push(performance.now() - flushedAt);
    }
    const first = delays[0]!;
    delays.sort((x, y) => x - y);
    console.log(
      `change feed: replica b saw replica a's flushed count after p50 ${delays[10]!.toFixed(1)} ms, max ${delays[19]!.toFixed(1)} ms, first round ${first.toFixed(1)} ms (20 rounds)`,
    );

    // Both replicas past the threshold at once: the mark in the shared record lets one of them warn.
    const warned: BudgetConfig = { name: 'budgets[1]', grant: 'openai', limit: { tokens: 100 }, per: 'hour', warn_at: 0.5, over: 'refuse' };
    const [c, d] = await Promise.all([replica([warned]), replica([warned])]);
    c.ledger.add(entry(30, 0));
    d.ledger.add(entry(30, 0));
    const verdicts = await Promise.all([c.ledger.check(scope, new Date()), d.ledger.check(scope, new Date()), c.ledger.check(scope, new Date())]);
    // Each sees only its own 31 until they flush: neither is past 50 yet.
    expect(verdicts.flatMap((v) => v.warn)).toEqual([]);
    await Promise.all([c.ledger.flush(), d.ledger.flush()]);
    await Promise.all([c.store.catchUp(), d.store.catchUp()]);
    const after = await Promise.all([c.ledger.check(scope, new Date()), d.ledger.check(scope, new Date())]);
    expect(after.flatMap((v) => v.warn).map((w) => w.used)).toEqual([62]);
  });

  it('both fold old hours into days at once, each adding its own late and new answers: every count once, to the token and 1e-6 USD', async () => {
    const [a, b] = await Promise.all([replica([]), replica([])]);
    const DAY = 86_400_000;
    const now = Date.now();
    const who = { agent: 'folder', grant: 'openai', end_user: 'alice', model: 'gpt-5' } as const;
    // 10 to 5 days ago, every third hour: all of it folds.
    const planted = [];
    for (let t = now - 10 * DAY, i = 0; t < now - 5 * DAY; t += 3 * 3_600_000, i++)
      planted.push({ ...who, hour: hourOf(new Date(t)), requests: 1 + (i % 3), input_tokens: 100 + i, cost_usd: 0.000_137 * (i + 1) });
    await plantSpend(a.store, planted);
    const expected = { requests: 0, tokens: 0, usd: 0 };
    for (const p of planted) {
      expected.requests += p.requests;
      expected.tokens += p.input_tokens;
      expected.usd += p.cost_usd;
    }
    const add = (ledger: SpendLedger, i: number) => {
      // An answer counted now, and one whose hour is in a day being folded (a late flush).
      for (const at of [new Date(), new Date(now - 7 * DAY)]) {
        ledger.add({ ...entry(10 + i, 0.000_201 * i), agent: who.agent, at });
        expected.requests++;
        expected.tokens += 10 + i;
        expected.usd += 0.000_201 * i;
      }
    };
    for (let i = 0; i < 30; i++) add(i % 2 ? a.ledger : b.ledger, i);
    // Each replica's first flush folds (it runs at most hourly, and first at once): both at the same moment.
    await Promise.all([a.ledger.flush(), b.ledger.flush()]);
    const reader = await PostgresStore.open(db.url, key);
    stores.push(reader);
    const left = reader.entries('spend:').filter(([id]) => id.includes(':folder:') && /T\d{2}:/.test(id) && id.slice(6, 16) < hourOf(new Date(now - 3 * DAY)));
    expect(left).toEqual([]);
    const report = spendReport(reader, [], { since: new Date(now - 11 * DAY), now: new Date(), agent: 'folder' });
    expect(report.totals.requests).toBe(expected.requests);
    expect(report.totals.input_tokens).toBe(expected.tokens);
    expect(Math.abs(report.totals.cost_usd - expected.usd)).toBeLessThan(1e-6);
  });
});
