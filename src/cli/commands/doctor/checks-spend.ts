// doctor's look at model spend: a model answered through keyway in the last 30 days that has no
// price (spend records with unpriced > 0) is counted in tokens only and missing from every dollar
// total and USD budget. Named here with the fix; no line at all on a home without model traffic.

import { openServices } from '../../../open-home.ts';
import { hourStart } from '../../../operations/spend-window.ts';
import type { RecordSource } from '../../../credentials/store/credential-store.ts';
import { hourOf, parseSpendRecordId, SPEND_PREFIX, type SpendRecord, spendInWindow } from '../../../spend/records.ts';
import type { CheckResult, Context } from './context.ts';

const CHECK = 'model prices';
const LOOK_BACK_MS = 30 * 86_400_000;
/** Models named in the line; the rest are counted. */
const NAMED = 10;

/** From the store's spend records: undefined when no model answered in the window. */
export function unpricedModels(store: RecordSource, now: Date): CheckResult | undefined {
  const first = hourOf(hourStart(new Date(now.getTime() - LOOK_BACK_MS)));
  const unpriced = new Map<string, number>();
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
    detail: `no price for ${named.join(', ')}${more} in the last 30 days: their tokens are counted, their cost is in no dollar total or USD budget`,
    fix: 'add each under pricing: in the config ({MODEL_GLOB: {input_per_mtok, output_per_mtok}}; docs/spend.md), then keyway reload',
  };
}

/** The store opened as a command opens it (nothing made); a store that does not open is checkStore's line, not this one's. */
export async function checkModelPrices(ctx: Context): Promise<CheckResult | undefined> {
  let services: Awaited<ReturnType<typeof openServices>>;
  try {
    services = await openServices({ home: ctx.config.home, configFile: ctx.args.string('config'), env: ctx.io.env, createOnFirstWrite: true });
  } catch {
    return undefined;
  }
  try {
    return unpricedModels(services.store, new Date());
  } finally {
    services.store.close();
    await services.store.end?.();
  }
}
