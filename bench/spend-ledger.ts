// What the spend ledger costs (issue 63): `node bench/spend-ledger.ts`.
// 1. One file-store update (what each of the ledger's flushes is) as the store grows with spend
//    records (per hour, agent, grant, end user and model, before folding).
// 2. The steady state of 62 days (5 agents, 2 models, 10 busy hours a day): all hourly, then folded
//    (hours older than the last two full UTC days in one record per day): records, file size, one
//    update, and the fold's own update (the first, and an hourly one with nothing new to fold).
// 3. add() and check() on the request path, with no budget, 3 budgets, and 20 budgets.
// Figures go to docs/perf/spend-ledger.md.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { foldSpend } from '../src/spend/ledger/fold.ts';
import { SpendLedger } from '../src/spend/ledger/ledger.ts';
import { pruneSpend } from '../src/spend/ledger/prune.ts';
import type { BudgetConfig } from '../src/config/spend.ts';
import { Store } from '../src/credentials/store/index.ts';
import type { SpendEntry, SpendScope } from '../src/spend/core/ledger.ts';
import { hourOf, SPEND_KEPT_DAYS, spendRecordId } from '../src/spend/core/records.ts';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function storeUpdates(): Promise<void> {
  console.log('| spend records in the store | one update, p50 (ms) |\n|---|---|');
  for (const n of [0, 1_000, 6_000, 30_000]) {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-bench-spend-'));
    const store = await Store.open(join(dir, 'store.json'), randomBytes(32));
    await store.update((d) => {
      for (let i = 0; i < n; i++) {
        const day = String(1 + (i % 28)).padStart(2, '0');
        d.set(spendRecordId(`2026-10-${day}T${String(i % 24).padStart(2, '0')}`, `agent-${i % 50}`, 'anthropic', null, `model-${i}`), {
          input_tokens: 12_345,
          output_tokens: 678,
          cached_input_tokens: 0,
          cache_write_tokens: 0,
          cost_usd: 0.0123,
          requests: 3,
          unpriced: 0,
          unknown: 0,
          partial: 0,
        });
      }
    });
    const times: number[] = [];
    for (let r = 0; r < 21; r++) {
      const t = performance.now();
      await store.update((d) => d.set('budget:all|day|tokens|:2026-11-26', { tokens: r, usd: 0 }));
      times.push(performance.now() - t);
    }
    console.log(`| ${n} | ${median(times).toFixed(1)} |`);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** p50 of 21 small updates (a token refresh's, a flush's: one record), in ms. */
async function updateP50(store: Store): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < 21; r++) {
    const t = performance.now();
    await store.update((d) => d.set('budget:all|day|tokens|:2026-11-26', { tokens: r, usd: 0 }));
    times.push(performance.now() - t);
  }
  return median(times);
}

async function steadyState(): Promise<void> {
  const now = new Date('2026-11-26T22:10:00Z');
  const dir = mkdtempSync(join(tmpdir(), 'keyway-bench-spend-'));
  const file = join(dir, 'store.json');
  const store = await Store.open(file, randomBytes(32));
  await store.update((d) => {
    for (let day = SPEND_KEPT_DAYS - 1; day >= 0; day--) {
      for (let h = 8; h < 18; h++) {
        const hour = hourOf(new Date(Date.UTC(2026, 10, 26 - day, h)));
        for (let a = 0; a < 5; a++)
          for (const model of ['claude-sonnet-4-5', 'gpt-4.1'])
            d.set(spendRecordId(hour, `agent-${a}`, 'anthropic', null, model), {
              input_tokens: 12_345,
              output_tokens: 678,
              cached_input_tokens: 0,
              cache_write_tokens: 0,
              cost_usd: 0.0123,
              requests: 3,
              unpriced: 0,
              unknown: 0,
              partial: 0,
            });
      }
    }
  });
  const row = (label: string, ms: number) =>
    console.log(`| ${label} | ${store.entries('spend:').length} | ${(statSync(file).size / 1024).toFixed(0)} KiB | ${ms.toFixed(1)} |`);
  console.log('\n| 62 days, 5 agents x 2 models x 10 h/day | spend records | store file | one update, p50 (ms) |\n|---|---|---|---|');
  row('all hourly (before folding)', await updateP50(store));
  let t = performance.now();
  await store.update((d) => {
    pruneSpend(d, now);
    foldSpend(d, now);
  });
  const firstFold = performance.now() - t;
  row('folded (steady state)', await updateP50(store));
  t = performance.now();
  await store.update((d) => {
    pruneSpend(d, now);
    foldSpend(d, now);
  });
  console.log(`\nthe first fold's update: ${firstFold.toFixed(1)} ms; an hourly prune + fold with nothing to fold: ${(performance.now() - t).toFixed(1)} ms`);
  store.close();
  rmSync(dir, { recursive: true, force: true });
}

async function requestPath(): Promise<void> {
  console.log('\n| budgets | add() µs | check() µs |\n|---|---|---|');
  for (const count of [0, 3, 20]) {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-bench-spend-'));
    const store = await Store.open(join(dir, 'store.json'), randomBytes(32));
    const budgets: BudgetConfig[] = Array.from({ length: count }, (_, i) => ({
      name: `budgets[${i}]`,
      ...(i % 3 === 0 ? { agent: '*' } : i % 3 === 1 ? { agent: `agent-${i}` } : { grant: 'anthropic' }),
      limit: i % 2 ? { usd: 1_000_000 } : { tokens: 1e12 },
      per: (['hour', 'day', 'month'] as const)[i % 3]!,
      over: 'refuse',
    }));
    const ledger = new SpendLedger({ store, budgets: () => budgets });
    const scope: SpendScope = { agent: 'agent-1', grant: 'anthropic', end_user: null };
    const entry: SpendEntry = {
      ...scope,
      at: new Date(),
      reading: { usage: { model: 'claude-sonnet-4-5', input_tokens: 1200, output_tokens: 300 }, basis: 'reported' },
      cost_usd: 0.0081,
    };
    const N = 20_000;
    const adds: number[] = [];
    const checks: number[] = [];
    for (let round = 0; round < 9; round++) {
      let t = performance.now();
      for (let i = 0; i < N; i++) ledger.add(entry);
      adds.push(((performance.now() - t) * 1000) / N);
      t = performance.now();
      for (let i = 0; i < N; i++) ledger.check(scope, entry.at);
      checks.push(((performance.now() - t) * 1000) / N);
      await ledger.flush();
    }
    console.log(`| ${count} | ${median(adds).toFixed(2)} | ${median(checks).toFixed(2)} |`);
    await ledger.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await storeUpdates();
await steadyState();
if (!process.argv.includes('--no-request-path')) await requestPath();
