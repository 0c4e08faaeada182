// doctor's "model prices" line: a model answered in the last 30 days with no price is named with
// the fix; priced traffic is ok; a home with no model traffic (or only older) gets no line.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PRICES_AGE_CHECK, shippedPricesAge, unpricedModels } from '../../src/cli/commands/doctor/checks-spend.ts';
import { Store } from '../../src/credentials/store/index.ts';
import { plantSpend } from '../helpers/spend-records.ts';

const NOW = new Date('2026-11-26T22:40:00Z');

describe('doctor: model prices', () => {
  let store: Store;
  beforeEach(async () => {
    store = await Store.open(join(mkdtempSync(join(tmpdir(), 'keyway-doctor-spend-')), 'store.json'), randomBytes(32));
  });
  afterEach(() => store.close());

  it('says nothing on a home without model traffic in the last 30 days', async () => {
    expect(unpricedModels(store, NOW)).toBeUndefined();
    await plantSpend(store, [{ hour: '2026-10-26T21', agent: 'a', grant: 'g', model: 'old-model', requests: 3, unpriced: 3 }]);
    expect(unpricedModels(store, NOW)).toBeUndefined();
  });

  it('is ok when every model had a price', async () => {
    await plantSpend(store, [{ hour: '2026-11-26T21', agent: 'a', grant: 'g', model: 'claude-sonnet-4-5', requests: 3, cost_usd: 0.1 }]);
    expect(unpricedModels(store, NOW)).toMatchObject({ status: 'ok', check: 'model prices' });
  });

  it('counts day records (folded hours) whose day overlaps the last 30 days, not older ones', async () => {
    await plantSpend(store, [
      { hour: '2026-10-26', agent: 'a', grant: 'g', model: 'old-model', requests: 3, unpriced: 3 },
      { hour: '2026-10-27', agent: 'a', grant: 'g', model: 'house-model', requests: 2, unpriced: 2 },
      { hour: '2026-11-10', agent: 'a', grant: 'g', model: 'house-model', requests: 1, unpriced: 1 },
    ]);
    // 30 days back from 22:40 on the 26th is 22:00 on 27 October: that day overlaps, the 26th does not.
    expect(unpricedModels(store, NOW)?.detail).toMatch(/^no price for "house-model" \(3 answer\(s\)\) in the last 30 days/);
  });

  it('warns, naming each unpriced model (most answers first) and the pricing: fix', async () => {
    await plantSpend(store, [
      { hour: '2026-11-26T21', agent: 'a', grant: 'g', model: 'claude-sonnet-4-5', requests: 3, cost_usd: 0.1 },
      { hour: '2026-11-20T10', agent: 'a', grant: 'gw', model: 'house-model', requests: 2, unpriced: 2 },
      { hour: '2026-11-26T22', agent: 'b', grant: 'gw', model: 'house-model', requests: 1, unpriced: 1 },
      { hour: '2026-11-01T00', agent: 'b', grant: 'gw', model: 'tiny"model', requests: 1, unpriced: 1 },
    ]);
    const result = unpricedModels(store, NOW)!;
    expect(result.status).toBe('warn');
    expect(result.detail).toBe(
      'no price for "house-model" (3 answer(s)), "tiny\\"model" (1 answer(s)) in the last 30 days: their tokens are counted, their cost is in no dollar total or USD budget',
    );
    expect(result.fix).toContain('pricing:');
  });
});

describe("the shipped price table's age", () => {
  it('is ok up to 90 days after the table was checked, and warns after, with the fix', () => {
    expect(shippedPricesAge('2026-01-01', new Date('2026-01-01T12:00:00Z'))).toMatchObject({ check: PRICES_AGE_CHECK, status: 'ok' });
    expect(shippedPricesAge('2026-01-01', new Date('2026-04-01T23:59:59Z'))).toMatchObject({
      status: 'ok',
      detail: 'the shipped price table was checked 2026-01-01 (90 day(s) ago)',
    });
    const stale = shippedPricesAge('2026-01-01', new Date('2026-04-02T00:00:00Z'));
    expect(stale).toMatchObject({ status: 'warn', detail: expect.stringContaining('2026-01-01, 91 days ago (more than 90)') });
    expect(stale.fix).toContain('pricing:');
  });
});
