// doctor's look at model spend: a model answered through keyway in the last 30 days that has no
// price (spend records with unpriced > 0) is counted in tokens only, missing from every dollar total,
// or, under a budget in dollars, counted at the fallback price (the vendor's highest). Named here
// with the fix; no line at all on a home without model traffic. And the shipped price table's age:
// past PRICES_STALE_DAYS after it was checked, a warning, on a home with model traffic or budgets
// (where prices count).

import { openServices } from '../../../open-home.ts';
import { budgetsOf } from '../../../operations/spend-budgets.ts';
import { PRICES_AS_OF, PRICES_STALE_DAYS } from '../../../spend/core/default-prices.ts';
import { hourStart } from '../../../operations/spend-window.ts';
import type { RecordSource } from '../../../credentials/store/credential-store.ts';
import { hourOf, parseSpendRecordId, SPEND_PREFIX, type SpendRecord, spendInWindow } from '../../../spend/core/records.ts';
import type { CheckResult, Context } from './context.ts';

const CHECK = 'model prices';
export const PRICES_AGE_CHECK = 'shipped prices';
const LOOK_BACK_MS = 30 * 86_400_000;
/** Models named in the line; the rest are counted. */
const NAMED = 10;

/** From the store's spend records: undefined when no model answered in the window. */
export function unpricedModels(store: RecordSource, now: Date): CheckResult | undefined {
  const first = hourOf(hourStart(new Date(now.getTime() - LOOK_BACK_MS)));
  const unpriced = new Map<string, number>();
  let fallback = 0;
  let answers = 0;
  for (const [id, record] of store.entries<SpendRecord>(SPEND_PREFIX)) {
    const key = parseSpendRecordId(id);
    // A day record (folded hours) counts whole when its day overlaps the 30 days. No end: a replica
    // whose clock runs ahead still names its model.
    if (key === undefined || !spendInWindow(key, first, '9999-12-31T23')) continue;
    answers += typeof record.requests === 'number' ? record.requests : 0;
    if (typeof record.unpriced === 'number' && record.unpriced > 0) {
      const model = key.model ?? '(unnamed)';
      unpriced.set(model, (unpriced.get(model) ?? 0) + record.unpriced);
      if (typeof record.fallback === 'number' && record.fallback > 0) fallback += record.fallback;
    }
  }
  if (answers === 0) return undefined;
  if (unpriced.size === 0) return { check: CHECK, status: 'ok', detail: `every model answered in the last 30 days has a price (${answers} answer(s))` };
  const models = [...unpriced].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const named = models.slice(0, NAMED).map(([model, n]) => `${JSON.stringify(model)} (${n} answer(s))`);
  const more = models.length > NAMED ? ` and ${models.length - NAMED} more` : '';
  return {
    check: CHECK,
    status: 'warn',
    detail:
      `no price for ${named.join(', ')}${more} in the last 30 days: their tokens are counted, their cost is in no dollar total or USD budget` +
      (fallback > 0 ? ` (but ${fallback} answer(s) under a USD budget, priced at the fallback: the vendor's highest shipped price)` : ''),
    fix: 'add each under pricing: in the config ({MODEL_GLOB: {input_per_mtok, output_per_mtok}}; docs/spend.md), then keyway reload',
  };
}

/** How old the shipped price table is at `now`: ok within PRICES_STALE_DAYS of `asOf`, a warning past it. */
export function shippedPricesAge(asOf: string, now: Date): CheckResult {
  const days = Math.floor((now.getTime() - Date.parse(`${asOf}T00:00:00Z`)) / 86_400_000);
  if (days <= PRICES_STALE_DAYS) return { check: PRICES_AGE_CHECK, status: 'ok', detail: `the shipped price table was checked ${asOf} (${days} day(s) ago)` };
  return {
    check: PRICES_AGE_CHECK,
    status: 'warn',
    detail: `the shipped price table was checked ${asOf}, ${days} days ago (more than ${PRICES_STALE_DAYS}): list prices change and new models come`,
    fix: 'check the models you use against the vendors\' pricing pages and set any price that changed under pricing: (docs/spend.md, "Prices"), or upgrade keyway',
  };
}

/**
 * The store opened as a command opens it (nothing made); a store that does not open is checkStore's
 * line, not this one's. The unpriced models' line when a model answered in the last 30 days; the
 * price table's age where prices count (model traffic, or a budget in the config).
 */
export async function checkModelPrices(ctx: Context, now = new Date()): Promise<CheckResult[]> {
  let services: Awaited<ReturnType<typeof openServices>>;
  try {
    services = await openServices({ home: ctx.config.home, configFile: ctx.args.string('config'), env: ctx.io.env, createOnFirstWrite: true });
  } catch {
    return [];
  }
  try {
    const unpriced = unpricedModels(services.store, now);
    if (unpriced === undefined && budgetsOf(services.config).length === 0) return [];
    return [...(unpriced === undefined ? [] : [unpriced]), shippedPricesAge(PRICES_AS_OF, now)];
  } finally {
    services.store.close();
    await services.store.end?.();
  }
}
