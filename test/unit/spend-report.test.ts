// The spend reader behind `keyway spend`, GET /api/spend and the dashboard: records planted in a
// real (file) store as the ledger writes them; sums to the token and to 1e-6 USD; the window from
// the top of the hour; filters; unpriced and unknown kept apart; budgets and where each stands.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BudgetConfig } from '../../src/config/spend.ts';
import { Store } from '../../src/credentials/store/index.ts';
import { budgetStandings } from '../../src/operations/spend-budgets.ts';
import { spendReport } from '../../src/operations/spend.ts';
import { spendSince } from '../../src/operations/spend-window.ts';
import { budgetKey, periodOf, scopeValueOf } from '../../src/spend/core/budgets.ts';
import { ExactSum } from '../../src/spend/core/exact-sum.ts';
import { plantBudget, plantSpend } from '../helpers/spend-records.ts';

const NOW = new Date('2026-11-26T22:40:00Z');

describe('spendSince', () => {
  it('starts at the top of the UTC hour the time falls in', () => {
    expect(spendSince('2026-11-26T21:59:59Z', NOW, '--since').toISOString()).toBe('2026-11-26T21:00:00.000Z');
    expect(spendSince('2026-11-26T22:00Z', NOW, '--since').toISOString()).toBe('2026-11-26T22:00:00.000Z');
    expect(spendSince('2026-11-26T21', NOW, '--since').toISOString()).toBe('2026-11-26T21:00:00.000Z');
    expect(spendSince('2026-11-26T23:30+02:00', NOW, '--since').toISOString()).toBe('2026-11-26T21:00:00.000Z');
    expect(spendSince('2026-11-20', NOW, '--since').toISOString()).toBe('2026-11-20T00:00:00.000Z');
    // A time without a zone is UTC, as the records are.
    expect(spendSince('2026-11-26T05:10', NOW, '--since').toISOString()).toBe('2026-11-26T05:00:00.000Z');
  });

  it('takes a duration back from now, and defaults to the start of the UTC month', () => {
    expect(spendSince('90m', NOW, '--since').toISOString()).toBe('2026-11-26T21:00:00.000Z');
    expect(spendSince('24h', NOW, '--since').toISOString()).toBe('2026-11-25T22:00:00.000Z');
    expect(spendSince('7d', NOW, '--since').toISOString()).toBe('2026-11-19T22:00:00.000Z');
    expect(spendSince(undefined, NOW, '--since').toISOString()).toBe('2026-11-01T00:00:00.000Z');
  });

  it('refuses what it does not read as a time, a date that does not exist, and the future', () => {
    for (const text of [
      'yesterday',
      'Nov 3',
      '2026-11-26 10:00',
      '2026-02-30',
      '2026-13-01',
      '2026-11-26T24:00Z',
      '2026-11-26T10:61',
      '7w',
      '-1d',
      '',
      '1e3h',
      '1609459200',
    ]) {
      expect(() => spendSince(text, NOW, '--since'), text).toThrow(/--since: expected/);
    }
    expect(() => spendSince('2026-11-27', NOW, '--since')).toThrow(/in the future/);
  });
});

describe('ExactSum', () => {
  it('sums many fractional prices without drift', () => {
    const exact = new ExactSum();
    let plain = 0;
    for (let i = 0; i < 1_000_000; i++) {
      exact.add(0.1);
      plain += 0.1;
    }
    expect(exact.value).toBe(100_000);
    expect(plain).not.toBe(100_000); // what a plain += would print
  });
});

describe('spendReport over a real store', () => {
  let store: Store;

  beforeEach(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-spend-'));
    store = await Store.open(join(dir, 'store.json'), randomBytes(32));
  });
  afterEach(() => store.close());

  it('sums records per agent, grant, end user and model, to the token and to 1e-6 USD', async () => {
    // 300 hourly records of one model in 3 hours, each with a price that does not add up in binary.
    const planted = [];
    let tokensIn = 0;
    let cost = 0;
    for (let i = 0; i < 300; i++) {
      const price = 0.000123 * (i + 1) + 0.1;
      planted.push({
        hour: `2026-11-26T${20 + (i % 3)}`,
        agent: 'ci-bot',
        grant: 'anthropic',
        model: 'claude-sonnet-4-5',
        input_tokens: 1000 + i,
        output_tokens: 7,
        cached_input_tokens: 3,
        cache_write_tokens: 1,
        requests: 1,
        cost_usd: price,
      });
      tokensIn += 1000 + i;
      cost += price; // the expectation: compared to 1e-6 below
    }
    await plantSpend(store, planted);
    await plantSpend(store, [
      { hour: '2026-11-26T21', agent: 'ci-bot', grant: 'gateway', model: 'house-model', input_tokens: 500, output_tokens: 50, requests: 2, unpriced: 2 },
      { hour: '2026-11-26T21', agent: 'ci-bot', grant: 'gateway', model: null, requests: 3, unknown: 3 },
      {
        hour: '2026-11-26T22',
        agent: 'other',
        grant: 'openai',
        end_user: 'alice@example.com',
        model: 'gpt-4.1',
        input_tokens: 10,
        output_tokens: 5,
        requests: 1,
        cost_usd: 0.25,
        partial: 1,
      },
    ]);
    const report = spendReport(store, [], { since: new Date('2026-11-01T00:00:00Z'), now: NOW });
    expect(report.since).toBe('2026-11-01T00:00:00.000Z');
    expect(report.until).toBe(NOW.toISOString());
    expect(report.totals).toMatchObject({
      requests: 306,
      input_tokens: tokensIn + 510,
      output_tokens: 300 * 7 + 55,
      cached_input_tokens: 900,
      cache_write_tokens: 300,
      unpriced: 2,
      unknown: 3,
      partial: 1,
    });
    expect(Math.abs(report.totals.cost_usd - (cost + 0.25))).toBeLessThan(1e-6);
    expect(report.rows.map((r) => [r.agent, r.grant, r.end_user, r.model, r.requests])).toEqual([
      ['ci-bot', 'gateway', null, null, 3],
      ['ci-bot', 'anthropic', null, 'claude-sonnet-4-5', 300],
      ['ci-bot', 'gateway', null, 'house-model', 2],
      ['other', 'openai', 'alice@example.com', 'gpt-4.1', 1],
    ]);
    const unpriced = report.rows.find((r) => r.model === 'house-model')!;
    expect(unpriced).toMatchObject({ unpriced: 2, input_tokens: 500, output_tokens: 50, cost_usd: 0 });
  });

  it('counts the hours from the one since falls in, and filters by agent and grant', async () => {
    await plantSpend(store, [
      { hour: '2026-11-26T20', agent: 'a', grant: 'g1', model: 'm', input_tokens: 1, requests: 1, cost_usd: 1 },
      { hour: '2026-11-26T21', agent: 'a', grant: 'g1', model: 'm', input_tokens: 10, requests: 1, cost_usd: 10 },
      { hour: '2026-11-26T21', agent: 'b', grant: 'g2', model: 'm', input_tokens: 100, requests: 1, cost_usd: 100 },
      { hour: '2026-11-26T22', agent: 'a', grant: 'g2', model: 'm', input_tokens: 1000, requests: 1, cost_usd: 1000 },
      // A replica whose clock runs ahead: its hour has not come yet.
      { hour: '2026-11-26T23', agent: 'a', grant: 'g1', model: 'm', input_tokens: 10000, requests: 1, cost_usd: 10000 },
    ]);
    const at = (since: string, filter: { agent?: string; grant?: string } = {}) =>
      spendReport(store, [], { since: spendSince(since, NOW, 'since'), now: NOW, ...filter }).totals.input_tokens;
    expect(at('2026-11-26T21:59:59Z')).toBe(1110); // the 21h record counts whole
    expect(at('2026-11-26T20:00Z')).toBe(1111);
    expect(at('30m')).toBe(1000); // 22:10 falls in the 22h hour
    expect(at('2026-11-26T20:00Z', { agent: 'a' })).toBe(1011);
    expect(at('2026-11-26T20:00Z', { grant: 'g2' })).toBe(1100);
    expect(at('2026-11-26T20:00Z', { agent: 'a', grant: 'g2' })).toBe(1000);
    expect(at('2026-11-26T20:00Z', { agent: 'nobody' })).toBe(0);
  });

  it('counts day records (folded hours) whole in a window their day overlaps; a since in a folded day starts at its midnight', async () => {
    // NOW is 2026-11-26T22:40: the 24th, the 25th and today are kept hourly, earlier days per day.
    await plantSpend(store, [
      { hour: '2026-10-31', agent: 'a', grant: 'g', model: 'm', input_tokens: 1, requests: 1, cost_usd: 0.1 },
      { hour: '2026-11-01', agent: 'a', grant: 'g', model: 'm', input_tokens: 10, requests: 1, cost_usd: 0.2 },
      { hour: '2026-11-23', agent: 'a', grant: 'g', model: 'm', input_tokens: 100, requests: 1, cost_usd: 0.3 },
      // A late hour of a folded day (a flush that failed for days): counted beside its day's record.
      { hour: '2026-11-23T05', agent: 'b', grant: 'g', model: 'm', input_tokens: 1_000, requests: 1, cost_usd: 0.4 },
      { hour: '2026-11-24T10', agent: 'a', grant: 'g', model: 'm', input_tokens: 10_000, requests: 1, cost_usd: 0.5 },
      { hour: '2026-11-26T21', agent: 'a', grant: 'g', model: 'm', input_tokens: 100_000, requests: 1, cost_usd: 0.6 },
      // A day record of today (a process whose clock runs ahead folded it): counted whole when today is in the window.
      { hour: '2026-11-26', agent: 'c', grant: 'g', model: 'm', input_tokens: 1_000_000, requests: 1 },
    ]);
    const at = (since: string) => spendReport(store, [], { since: spendSince(since, NOW, 'since'), now: NOW });
    // The month: day records from the 1st on, never October's.
    expect(at('2026-11-01').totals.input_tokens).toBe(1_111_110);
    expect(Math.abs(at('2026-11-01').totals.cost_usd - (0.2 + 0.3 + 0.4 + 0.5 + 0.6))).toBeLessThan(1e-6);
    // Inside a folded day: the whole day counts, and since says so.
    const inFolded = at('2026-11-23T18:30Z');
    expect(inFolded.since).toBe('2026-11-23T00:00:00.000Z');
    expect(inFolded.totals.input_tokens).toBe(1_111_100);
    expect(at('2026-11-22T23:59Z').totals.input_tokens).toBe(1_111_100);
    // Inside a day kept hourly: from the top of the hour, as before.
    const inHourly = at('2026-11-24T11:00Z');
    expect(inHourly.since).toBe('2026-11-24T11:00:00.000Z');
    expect(inHourly.totals.input_tokens).toBe(1_100_000);
    expect(at('2026-11-24T10:59Z').totals.input_tokens).toBe(1_110_000);
    expect(at('1h').totals.input_tokens).toBe(1_100_000);
    expect(spendReport(store, [], { since: new Date('2026-11-01T00:00:00Z'), now: NOW, agent: 'b' }).totals.input_tokens).toBe(1_000);
  });

  it('leaves out what does not read as a spend record, and a damaged count adds nothing', async () => {
    await store.update((draft) => {
      draft.set('spend:not-an-hour:a:g:_:m', { input_tokens: 5, requests: 1 });
      draft.set('spend:2026-11-26T21:a:g:_', { input_tokens: 5, requests: 1 });
      draft.set('spend:2026-11-26T21:a:g:_:m', { input_tokens: -4, output_tokens: 1.5, requests: 1, cost_usd: 'x' });
    });
    const report = spendReport(store, [], { since: new Date('2026-11-01T00:00:00Z'), now: NOW });
    expect(report.totals).toMatchObject({ requests: 1, input_tokens: 0, output_tokens: 0, cost_usd: 0 });
  });

  it('flags a budget row with the answers of its period and scope priced at the fallback or estimated from their bytes', async () => {
    const budgets: BudgetConfig[] = [
      { name: 'budgets[0]', agent: 'ci-bot', limit: { usd: 5 }, per: 'day', over: 'refuse' },
      { name: 'budgets[1]', agent: '*', limit: { tokens: 1000 }, per: 'hour', over: 'refuse' },
    ];
    await plantSpend(store, [
      { hour: '2026-11-26T22', agent: 'ci-bot', grant: 'openai', model: 'gpt-made-up', requests: 3, unpriced: 3, fallback: 3 },
      { hour: '2026-11-26T21', agent: 'ci-bot', grant: 'openai', model: 'gpt-4o', requests: 2, unknown: 2, estimated: 2 },
      // Yesterday's and another agent's: not in budgets[0]'s period or scope.
      { hour: '2026-11-25T22', agent: 'ci-bot', grant: 'openai', model: 'gpt-made-up', requests: 5, unpriced: 5, fallback: 5 },
      { hour: '2026-11-26T22', agent: 'other', grant: 'openai', model: 'gpt-made-up', requests: 7, unpriced: 7, fallback: 7 },
    ]);
    await plantBudget(store, budgetKey(budgets[1]!, scopeValueOf(budgets[1]!, { agent: 'other', grant: 'openai', end_user: null })!), periodOf('hour', NOW), {
      tokens: 10,
    });
    const rows = budgetStandings(store, budgets, NOW);
    expect(rows.map((r) => [r.name, r.agent, r.fallback, r.estimated])).toEqual([
      ['budgets[0]', 'ci-bot', 3, 2],
      ['budgets[1]', 'other', 7, 0],
    ]);
  });

  it("shows each budget's standing in this period, a * budget per value seen", async () => {
    const budgets: BudgetConfig[] = [
      { name: 'budgets[0]', agent: 'ci-bot', limit: { usd: 5 }, per: 'day', over: 'refuse', warn_at: 0.8 },
      { name: 'budgets[1]', end_user: '*', limit: { tokens: 2_000_000 }, per: 'month', over: 'approve' },
      { name: 'budgets[2]', grant: 'openai', agent: '*', limit: { tokens: 100 }, per: 'hour', over: 'refuse' },
      { name: 'budgets[3]', limit: { usd: 100 }, per: 'month', over: 'refuse' },
    ];
    const [ci, users, , all] = budgets as [BudgetConfig, BudgetConfig, BudgetConfig, BudgetConfig];
    const count = (
      b: BudgetConfig,
      scope: { agent: string | null; grant: string; end_user: string | null },
      period: string,
      add: { usd?: number; tokens?: number },
    ) => plantBudget(store, budgetKey(b, scopeValueOf(b, scope)!), period, add);
    await count(ci, { agent: 'ci-bot', grant: 'anthropic', end_user: null }, periodOf('day', NOW), { usd: 4.1, tokens: 900 });
    await count(ci, { agent: 'ci-bot', grant: 'anthropic', end_user: null }, '2026-11-25', { usd: 99 }); // yesterday's: not this period
    await count(users, { agent: 'x', grant: 'g', end_user: 'alice@example.com' }, '2026-11', { tokens: 1500 });
    await count(users, { agent: 'x', grant: 'g', end_user: 'bob,=:x' }, '2026-11', { tokens: 20 });
    await count(all, { agent: 'x', grant: 'g', end_user: null }, '2026-11', { usd: 0.1 });
    await count(all, { agent: 'x', grant: 'g', end_user: null }, '2026-11', { usd: 0.2 });

    const rows = budgetStandings(store, budgets, NOW);
    expect(rows).toEqual([
      {
        name: 'budgets[0]',
        agent: 'ci-bot',
        scope: '',
        unit: 'usd',
        limit: 5,
        used: 4.1,
        per: 'day',
        resets_at: '2026-11-27T00:00:00.000Z',
        over: 'refuse',
        fallback: 0,
        estimated: 0,
        warn_at: 0.8,
      },
      {
        name: 'budgets[1]',
        end_user: 'alice@example.com',
        scope: 'end_user=alice%40example.com',
        unit: 'tokens',
        limit: 2_000_000,
        used: 1500,
        per: 'month',
        resets_at: '2026-12-01T00:00:00.000Z',
        over: 'approve',
        fallback: 0,
        estimated: 0,
      },
      {
        name: 'budgets[1]',
        end_user: 'bob,=:x',
        scope: 'end_user=bob%2C%3D%3Ax',
        unit: 'tokens',
        limit: 2_000_000,
        used: 20,
        per: 'month',
        resets_at: '2026-12-01T00:00:00.000Z',
        over: 'approve',
        fallback: 0,
        estimated: 0,
      },
      // Nothing counted under it this hour: one row, still `*`, used 0.
      {
        name: 'budgets[2]',
        agent: '*',
        grant: 'openai',
        scope: '*',
        unit: 'tokens',
        limit: 100,
        used: 0,
        per: 'hour',
        resets_at: '2026-11-26T23:00:00.000Z',
        over: 'refuse',
        fallback: 0,
        estimated: 0,
      },
      {
        name: 'budgets[3]',
        scope: '',
        unit: 'usd',
        limit: 100,
        used: 0.3,
        per: 'month',
        resets_at: '2026-12-01T00:00:00.000Z',
        over: 'refuse',
        fallback: 0,
        estimated: 0,
      },
    ]);
    // --agent other: the budgets that can count its traffic (not ci-bot's own).
    expect(budgetStandings(store, budgets, NOW, { agent: 'other' }).map((r) => r.name)).toEqual(['budgets[1]', 'budgets[1]', 'budgets[2]', 'budgets[3]']);
    expect(budgetStandings(store, budgets, NOW, { grant: 'anthropic' }).map((r) => r.name)).toEqual(['budgets[0]', 'budgets[1]', 'budgets[1]', 'budgets[3]']);
    // And in the report, with the same filter.
    expect(spendReport(store, budgets, { since: new Date('2026-11-01T00:00:00Z'), now: NOW, agent: 'ci-bot' }).budgets.map((r) => r.name)).toEqual([
      'budgets[0]',
      'budgets[1]',
      'budgets[1]',
      'budgets[2]',
      'budgets[3]',
    ]);
  });
});
