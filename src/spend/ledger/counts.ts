// The spend ledger's in-memory arithmetic (ledger.ts owns the flushing): what an entry adds to
// its `spend:` record, a budget count's pending, in-flight and known parts, and the one guard at the
// ledger's door. Records are additive (spend/core/records.ts): each process adds the deltas it counted.
import type { BudgetStanding, BudgetVerdict, SpendEntry } from '../core/ledger.ts';
import type { BudgetRecord, SpendRecord } from '../core/records.ts';
import { totalTokens, type ModelUsage, type UsageReading } from '../core/usage.ts';

/** No budget applies, or none is near: the answer that costs nothing to give. */
export const NO_BUDGET: BudgetVerdict = Object.freeze({ over: undefined, warn: Object.freeze([]) as readonly BudgetStanding[] });

export const ZERO_SPEND: Readonly<SpendRecord> = Object.freeze({
  input_tokens: 0,
  output_tokens: 0,
  cached_input_tokens: 0,
  cache_write_tokens: 0,
  cost_usd: 0,
  requests: 0,
  unpriced: 0,
  unknown: 0,
  partial: 0,
  fallback: 0,
  estimated: 0,
});

const SPEND_FIELDS = Object.keys(ZERO_SPEND) as ReadonlyArray<keyof SpendRecord>;

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
const isUsd = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;
/** A stored number as the ledger adds to it: a record written by something else that is not a number counts from 0 rather than poisoning the sum. */
export const num = (n: unknown): number => (typeof n === 'number' && Number.isFinite(n) ? n : 0);

/**
 * The entry as the ledger counts it. What it admits: token counts that are whole non-negative
 * numbers, a cost that is a finite non-negative number or null. Anything else would be written
 * into records every process adds to (a NaN stays NaN forever, and JSON turns it into null), so a
 * usage with any other count is counted as unknown (the request counted, no tokens, flagged) and
 * such a cost as unpriced.
 */
export function admitted(entry: SpendEntry): SpendEntry {
  const usage = entry.reading.usage;
  const usageOk =
    usage === undefined ||
    (isCount(usage.input_tokens) &&
      isCount(usage.output_tokens) &&
      (usage.cached_input_tokens === undefined || isCount(usage.cached_input_tokens)) &&
      (usage.cache_write_tokens === undefined || isCount(usage.cache_write_tokens)) &&
      (usage.model === null || typeof usage.model === 'string'));
  const costOk = entry.cost_usd === null || isUsd(entry.cost_usd);
  if (usageOk && costOk) return entry;
  // A usage kept keeps its basis (a cost dropped drops its fallback mark); one dropped is unknown.
  const basis = usageOk ? entry.reading.basis : entry.reading.basis === 'partial' ? 'partial' : 'reported';
  const reading: UsageReading = { usage: usageOk ? usage : undefined, basis };
  return { ...entry, reading, cost_usd: usageOk && costOk ? entry.cost_usd : null };
}

/**
 * Adds one (admitted) entry to a pending record in place: the counts it adds to its hour's
 * `spend:` record, without a delta and a copy per answer. Only for records the ledger owns and nobody else holds.
 */
export function addEntryTo(into: SpendRecord, entry: SpendEntry): void {
  const usage: ModelUsage | undefined = entry.reading.usage;
  into.requests += 1;
  if (entry.reading.basis === 'partial') into.partial += 1;
  if (entry.cost_usd !== null) into.cost_usd += entry.cost_usd;
  if (usage === undefined) {
    into.unknown += 1;
    return;
  }
  // Said nothing of its usage, counted at its estimate under a budget: unknown still, and estimated.
  if (entry.reading.basis === 'estimated') {
    into.unknown += 1;
    into.estimated += 1;
  }
  into.input_tokens += usage.input_tokens;
  into.output_tokens += usage.output_tokens;
  into.cached_input_tokens += usage.cached_input_tokens ?? 0;
  into.cache_write_tokens += usage.cache_write_tokens ?? 0;
  // A known usage with no price: its tokens count, its cost does not (never silently zero), or
  // under a budget in dollars its cost is at the fallback price (and it is still unpriced).
  if (entry.cost_usd === null) into.unpriced += 1;
  else if (entry.reading.price === 'fallback') {
    into.unpriced += 1;
    into.fallback += 1;
  }
}

/** `into` += `delta`, field by field (a held record's odd field counts from 0). */
export function addSpend(into: SpendRecord | undefined, delta: SpendRecord): SpendRecord {
  const out = { ...ZERO_SPEND };
  for (const field of SPEND_FIELDS) out[field] = num(into?.[field]) + delta[field];
  return out;
}

/** What one (admitted) entry adds to a budget's count: both units (a record counts in one, the other is harmless). */
export const budgetDelta = (entry: SpendEntry): BudgetAmount => ({
  tokens: entry.reading.usage === undefined ? 0 : totalTokens(entry.reading.usage),
  usd: entry.cost_usd ?? 0,
});

export interface BudgetAmount {
  tokens: number;
  usd: number;
}

/** A budget record as the ledger writes it: the count, and which budgets' warnings were given in this period. */
export interface LedgerBudgetRecord extends BudgetRecord {
  /**
   * Warnings given for this count in its period, one mark per budget threshold (warnMark): kept in
   * the shared record so that a warning is given once for the whole keyway, every worker and replica.
   */
  warned?: string[];
}

/**
 * One budget record's count as this process knows it. `pending`: counted here, not yet sent to the
 * store; `flying`: in the update under way; `expect`: that update's totals, once its change ran
 * (so a store view at or past them already holds `flying`); `known`: the totals after this process's
 * last update.
 */
export interface BudgetCount {
  readonly id: string;
  /** The period's end (epoch ms): past it, a count with nothing pending is dropped. */
  readonly endsAt: number;
  pending: BudgetAmount;
  flying: BudgetAmount | undefined;
  expect: BudgetAmount | undefined;
  known: BudgetAmount;
  /** Warning marks this process knows were given (by it or, through the store, by another). */
  readonly warned: Set<string>;
  /** Warning marks a claim is under way for: a second check meanwhile does not warn again. */
  readonly claiming: Set<string>;
}

export const newCount = (id: string, endsAt: number): BudgetCount => ({
  id,
  endsAt,
  pending: { tokens: 0, usd: 0 },
  flying: undefined,
  expect: undefined,
  known: { tokens: 0, usd: 0 },
  warned: new Set(),
  claiming: new Set(),
});

/**
 * The count in `unit` by every process as far as this one knows: the store's view (newer through the
 * change feed) or this process's last known total, whichever is further, plus what is in flight
 * (unless the store's view already holds it) and what is pending. Never counts an addition twice:
 * while an update is under way the store's view may already hold it (it is adopted before the update
 * returns), which `expect` tells, since every other writer's addition to the record either came
 * before ours (and is in expect) or after it (and holds ours).
 */
export function usedOf(count: BudgetCount | undefined, stored: BudgetRecord | undefined, unit: 'usd' | 'tokens'): number {
  const inStore = num(stored?.[unit]);
  if (count === undefined) return inStore;
  const flying = count.flying?.[unit] ?? 0;
  const holdsFlying = count.expect !== undefined && inStore >= count.expect[unit];
  const base = holdsFlying ? inStore : Math.max(inStore, count.known[unit]) + flying;
  return base + count.pending[unit];
}

/**
 * Dollars as budgets compare them: to the nano-dollar, below any price per token, so that float
 * noise (ten answers at $0.1 sum to 0.9999999999999999) neither keeps a $1 budget from being
 * reached nor shows in a standing.
 */
export const nanoUsd = (usd: number): number => Math.round(usd * 1e9) / 1e9;

/** A threshold's warning mark: the limit and warn_at (a reload that changes either warns again). */
export const warnMark = (limit: number, warnAt: number): string => `${limit}@${warnAt}`;
