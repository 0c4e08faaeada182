// `keyway spend` through the real CLI and GET /api/spend on a real admin listener, over spend
// records planted in the running keyway's store as the spend ledger writes them: sums to the token
// and to 1e-6 USD, --agent and --grant, the window from the top of the hour --since falls in, an
// unpriced model flagged, unknown usage counted, the API the same answer and refused without the
// token, and no grant secret (a canary) in any output.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SpendReport } from '../../src/operations/spend.ts';
import { foldSpend } from '../../src/spend/ledger/fold.ts';
import { dayOf, hourOf } from '../../src/spend/core/records.ts';
import { type AdminClient, adminClient } from '../helpers/admin-api.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { makeHome, runCli, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { type PlantedSpend, plantBudget, plantSpend } from '../helpers/spend-records.ts';

const SECRET = `${CANARY}-spend`;
const HOUR = 3_600_000;
const COUNTS = ['requests', 'input_tokens', 'output_tokens', 'cached_input_tokens', 'cache_write_tokens', 'unpriced', 'unknown', 'partial'] as const;

/** What the planted records add up to, to compare with what keyway prints. */
function expected(planted: readonly PlantedSpend[]) {
  const out: Record<string, number> = Object.fromEntries([...COUNTS, 'cost_usd'].map((k) => [k, 0]));
  for (const p of planted) {
    for (const k of COUNTS) out[k]! += p[k] ?? 0;
    out['cost_usd']! += p.cost_usd ?? 0;
  }
  return out;
}

function expectSums(report: SpendReport, planted: readonly PlantedSpend[]): void {
  const want = expected(planted);
  for (const k of COUNTS) expect(report.totals[k], k).toBe(want[k]);
  expect(Math.abs(report.totals.cost_usd - want['cost_usd']!)).toBeLessThan(1e-6);
}

describe('keyway spend and GET /api/spend', () => {
  let proxy: TestProxy;
  let admin: AdminClient;
  const now = Date.now();
  const [h0, h1, h2] = [0, 1, 2].map((n) => hourOf(new Date(now - n * HOUR))) as [string, string, string];
  const old = hourOf(new Date(now - 40 * 24 * HOUR));
  const planted: PlantedSpend[] = [
    {
      hour: h0,
      agent: 'ci-bot',
      grant: 'anthropic',
      model: 'claude-sonnet-4-5',
      requests: 7,
      input_tokens: 12_345,
      output_tokens: 678,
      cached_input_tokens: 9_000,
      cache_write_tokens: 120,
      cost_usd: 0.0412347,
    },
    { hour: h1, agent: 'ci-bot', grant: 'anthropic', model: 'claude-sonnet-4-5', requests: 3, input_tokens: 3_003, output_tokens: 33, cost_usd: 0.1 + 0.2 },
    {
      hour: h1,
      agent: 'other',
      grant: 'openai',
      end_user: 'alice@example.com',
      model: 'gpt-4.1',
      requests: 2,
      input_tokens: 40,
      output_tokens: 4,
      cost_usd: 0.000123,
      partial: 1,
    },
    { hour: h2, agent: 'ci-bot', grant: 'gateway', model: 'house-model', requests: 4, input_tokens: 800, output_tokens: 80, unpriced: 4 },
    { hour: h2, agent: 'ci-bot', grant: 'gateway', model: null, requests: 2, unknown: 2 },
  ];
  const ancient: PlantedSpend = {
    hour: old,
    agent: 'ci-bot',
    grant: 'anthropic',
    model: 'claude-sonnet-4-5',
    requests: 1000,
    input_tokens: 1e6,
    cost_usd: 500,
  };
  const outputs: string[] = [];

  async function spend(...args: string[]) {
    const r = await proxy.cli(['spend', ...args]);
    outputs.push(r.stdout, r.stderr);
    return r;
  }
  async function spendJson(...args: string[]): Promise<SpendReport> {
    const r = await spend('--json', ...args);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as SpendReport;
  }
  async function api(query: string) {
    const r = await admin.call('GET', `/api/spend${query}`);
    outputs.push(r.text);
    return r;
  }

  beforeAll(async () => {
    proxy = await startProxy({ grants: [{ id: 'anthropic', type: 'bearer', domains: ['api.example.test'], secret: SECRET }] });
    admin = adminClient(proxy);
    await plantSpend(proxy.running.services.store, [...planted, ancient]);
  });
  afterAll(async () => {
    await proxy?.stop();
    for (const text of outputs) expect(text).not.toContain(SECRET);
    for (const text of outputs) expect(text).not.toContain(CANARY);
  });

  it('--json sums the records to the token and to 1e-6 USD, per agent, grant, end user and model', async () => {
    const report = await spendJson('--since', '7d');
    expectSums(report, planted);
    expect(report.rows.map((r) => [r.agent, r.grant, r.end_user, r.model])).toEqual([
      ['ci-bot', 'gateway', null, null],
      ['ci-bot', 'anthropic', null, 'claude-sonnet-4-5'],
      ['ci-bot', 'gateway', null, 'house-model'],
      ['other', 'openai', 'alice@example.com', 'gpt-4.1'],
    ]);
    const sonnet = report.rows.find((r) => r.model === 'claude-sonnet-4-5')!;
    expect(sonnet).toMatchObject({ requests: 10, input_tokens: 15_348, output_tokens: 711, cached_input_tokens: 9_000, cache_write_tokens: 120 });
    expect(Math.abs(sonnet.cost_usd - (0.0412347 + 0.1 + 0.2))).toBeLessThan(1e-6);
    // The unpriced model: its tokens counted, flagged, no cost; the answers with no usage: counted.
    expect(report.rows.find((r) => r.model === 'house-model')).toMatchObject({ unpriced: 4, input_tokens: 800, output_tokens: 80, cost_usd: 0 });
    expect(report.rows.find((r) => r.model === null)).toMatchObject({ requests: 2, unknown: 2, input_tokens: 0 });
    expect(report.budgets).toEqual([]);
  });

  it('--agent and --grant keep one agent’s or grant’s traffic', async () => {
    expectSums(
      await spendJson('--since', '7d', '--agent', 'other'),
      planted.filter((p) => p.agent === 'other'),
    );
    expectSums(
      await spendJson('--since', '7d', '--grant', 'gateway'),
      planted.filter((p) => p.grant === 'gateway'),
    );
    expectSums(
      await spendJson('--since', '7d', '--agent', 'ci-bot', '--grant', 'anthropic'),
      planted.filter((p) => p.agent === 'ci-bot' && p.grant === 'anthropic'),
    );
  });

  it('--since counts from the top of the hour it falls in', async () => {
    // A minute before the end of h1: h1 counts whole, h2 not at all.
    const lateInH1 = new Date(Date.parse(`${h1}:59:00Z`)).toISOString();
    const report = await spendJson('--since', lateInH1);
    expect(report.since).toBe(`${h1}:00:00.000Z`);
    expectSums(
      report,
      planted.filter((p) => p.hour >= h1),
    );
    // The first second of h2: h2 counts.
    expectSums(await spendJson('--since', `${h2}:00:00Z`), planted);
    // By default, the current UTC month: never the record of 40 days ago.
    const month = await spendJson();
    expect(month.since).toBe(`${month.until.slice(0, 7)}-01T00:00:00.000Z`);
    expect(month.totals.requests).toBeLessThan(1000);
    // Everything, the old record too, when the window reaches back to it.
    expect((await spendJson('--since', '41d')).totals.requests).toBe(expected(planted)['requests']! + 1000);
  });

  it('the table flags the unpriced model and counts the answers with no usage', async () => {
    const r = await spend('--since', '7d');
    expect(r.code, r.stderr).toBe(0);
    const house = r.stdout.split('\n').find((l) => l.includes('house-model'))!;
    expect(house).toMatch(/^ci-bot\s+house-model\s+4\s+800\s+0\s+80\s+0\.000000\s+no price: add it under pricing:/);
    expect(r.stdout).toMatch(/^TOTAL\s+18\s+/m);
    expect(r.stdout).toContain('2 answer(s) said nothing of their usage');
    expect(r.stdout).toContain('4 answer(s) had no price');
    expect(r.stdout).toContain('(none: budgets: in the config sets them');
  });

  it('refuses a --since it does not read, or one in the future', async () => {
    for (const since of ['yesterday', '2026-02-30', '3w']) {
      const r = await spend('--since', since);
      expect(r.code, since).toBe(2);
      expect(r.stderr).toContain('--since: expected');
    }
    const r = await spend('--since', '2999-01-01');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('in the future');
  });

  it('GET /api/spend answers what the CLI prints, with the same filters', async () => {
    for (const [query, args] of [
      ['?since=7d', ['--since', '7d']],
      ['?since=7d&agent=other', ['--since', '7d', '--agent', 'other']],
      [`?since=${encodeURIComponent(`${h1}:30:00Z`)}&grant=anthropic`, ['--since', `${h1}:30:00Z`, '--grant', 'anthropic']],
      ['', []],
    ] as const) {
      const res = await api(query);
      expect(res.status, query).toBe(200);
      const cli = await spendJson(...args);
      const { until: _a, ...fromApi } = res.body as SpendReport;
      const { until: _b, ...fromCli } = cli;
      expect(fromApi, query).toEqual(fromCli);
    }
  });

  it('GET /api/spend is refused without the admin token, or with a wrong one, and refuses what it does not read', async () => {
    const bare = await fetch(`${admin.base}/api/spend`);
    expect(bare.status).toBe(401);
    outputs.push(await bare.text());
    const wrong = await fetch(`${admin.base}/api/spend`, { headers: { authorization: `Bearer ${'x'.repeat(admin.token.length)}` } });
    expect(wrong.status).toBe(401);
    outputs.push(await wrong.text());
    for (const query of ['?since=yesterday', '?since=7d&since=1d', '?agnt=ci-bot', '?since=2999-01-01']) {
      const res = await api(query);
      expect(res.status, query).toBe(400);
      expect((res.body as { error: { code: string } }).error.code).toBe('bad_request');
    }
  });
});

describe('keyway spend with budgets: in the config', () => {
  let proxy: TestProxy;
  let admin: AdminClient;

  beforeAll(async () => {
    proxy = await startProxy({
      grants: [{ id: 'anthropic', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      config: {
        budgets: [
          { agent: 'ci-bot', limit: { usd: 5 }, per: 'day', over: 'refuse' },
          { end_user: '*', limit: { tokens: 1000 }, per: 'month', over: 'approve' },
        ],
      },
    });
    admin = adminClient(proxy);
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('shows each budget and where it stands, in the table, --json and the API', async () => {
    const { budgetKey, periodOf, scopeValueOf } = await import('../../src/spend/core/budgets.ts');
    const { budgetsOf } = await import('../../src/operations/spend-budgets.ts');
    const [ci, users] = budgetsOf(proxy.running.services.config) as [never, never];
    const now = new Date();
    const store = proxy.running.services.store;
    await plantBudget(store, budgetKey(ci, scopeValueOf(ci, { agent: 'ci-bot', grant: 'anthropic', end_user: null })!), periodOf('day', now), {
      usd: 1.25,
      tokens: 10,
    });
    await plantBudget(store, budgetKey(users, scopeValueOf(users, { agent: 'x', grant: 'anthropic', end_user: 'alice' })!), periodOf('month', now), {
      tokens: 900,
      usd: 3,
    });
    const r = await proxy.cli(['spend', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as SpendReport;
    expect(report.budgets.map((b) => [b.agent ?? b.end_user, b.unit, b.used, b.limit, b.per, b.over])).toEqual([
      ['ci-bot', 'usd', 1.25, 5, 'day', 'refuse'],
      ['alice', 'tokens', 900, 1000, 'month', 'approve'],
    ]);
    const table = await proxy.cli(['spend']);
    expect(table.stdout).toMatch(/agent=ci-bot\s+1\.250000 \(25%\)\s+5\s+usd\s+day/);
    expect(table.stdout).toMatch(/end_user=alice\s+900 \(90%\)\s+1000\s+tokens\s+month/);
    const res = await admin.call('GET', '/api/spend');
    expect((res.body as SpendReport).budgets).toEqual(report.budgets);
    for (const text of [r.stdout, table.stdout, res.text]) expect(text).not.toContain(SECRET);
  });
});

describe('keyway spend with no keyway running', () => {
  it('reads the records a stopped keyway left, and a new home as empty without making anything', async () => {
    const proxy = await startProxy({ grants: [{ id: 'anthropic', type: 'bearer', domains: ['api.example.test'], secret: SECRET }] });
    const hour = hourOf(new Date());
    await plantSpend(proxy.running.services.store, [
      { hour, agent: 'ci-bot', grant: 'anthropic', model: 'claude-sonnet-4-5', requests: 2, input_tokens: 30, output_tokens: 4, cost_usd: 0.75 },
    ]);
    await proxy.stop();
    const r = await proxy.cli(['spend', '--json', '--since', '1h']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as SpendReport;
    expect(report.totals).toMatchObject({ requests: 2, input_tokens: 30, output_tokens: 4, cost_usd: 0.75 });
    expect(r.stdout + r.stderr).not.toContain(SECRET);

    const fresh = makeHome();
    const empty = await runCli(['spend', '--json'], { KEYWAY_HOME: fresh });
    expect(empty.code, empty.stderr).toBe(0);
    expect((JSON.parse(empty.stdout) as SpendReport).totals.requests).toBe(0);
    expect(existsSync(join(fresh, 'data', 'store.json'))).toBe(false);
  });
});

describe('keyway spend over hour and day records (folded hours)', () => {
  it('--json sums both, a day record whole in a window its day overlaps; the same answers before and after the fold', async () => {
    const proxy = await startProxy({ grants: [{ id: 'anthropic', type: 'bearer', domains: ['api.example.test'], secret: SECRET }] });
    const now = Date.now();
    const d5 = dayOf(new Date(now - 5 * 24 * HOUR));
    const d6 = dayOf(new Date(now - 6 * 24 * HOUR));
    const recent = hourOf(new Date(now - HOUR));
    const base = { agent: 'ci-bot', grant: 'anthropic', model: 'claude-sonnet-4-5' } as const;
    const early: PlantedSpend = { ...base, hour: `${d5}T03`, requests: 1, input_tokens: 10, cost_usd: 0.1 };
    const late: PlantedSpend = { ...base, hour: `${d5}T20`, requests: 2, input_tokens: 200, cost_usd: 0.2 };
    const folded: PlantedSpend = { ...base, hour: d6, requests: 4, input_tokens: 4_000, cost_usd: 0.000_123 };
    const fresh: PlantedSpend = { ...base, hour: recent, requests: 8, input_tokens: 80_000, cost_usd: 0.7 };
    const store = proxy.running.services.store;
    await plantSpend(store, [early, late, folded, fresh]);
    const json = async (...args: string[]) => {
      const r = await proxy.cli(['spend', '--json', ...args]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout + r.stderr).not.toContain(SECRET);
      return JSON.parse(r.stdout) as SpendReport;
    };
    const windows = async () => {
      // Noon of a folded day: the whole day counts, and since names its midnight.
      const inD5 = await json('--since', `${d5}T12:00Z`);
      expect(inD5.since).toBe(`${d5}T00:00:00.000Z`);
      expectSums(inD5, [early, late, fresh]);
      expectSums(await json('--since', '7d'), [early, late, folded, fresh]);
      expectSums(await json('--since', '2h'), [fresh]);
      return [inD5.totals, (await json('--since', '7d')).rows];
    };
    const before = await windows();
    expect(await store.update((d) => foldSpend(d, new Date(now)))).toBe(2);
    expect(store.get(`spend:${d5}:ci-bot:anthropic:_:claude-sonnet-4-5`)).toMatchObject({ requests: 3, input_tokens: 210 });
    expect(await windows()).toEqual(before);
    await proxy.stop();
  });
});
