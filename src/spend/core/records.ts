// The spend ledger's records in the store (shared by every process and replica on it). Two kinds,
// both additive (each process adds what it counted; nothing is overwritten with a total):
//
// - `spend:<period>:<agent>:<grant>:<end_user>:<model>`: what was used in one UTC hour
//   (`2026-11-26T22`) or, once folded, one UTC day (`2026-11-26`), for `keyway spend`, the admin API
//   and the dashboard. `_` where a part is absent (an anonymous agent, no end user, a model nobody
//   named); each part is encodeURIComponent'd so a `:` in a model name cannot shift the others. The
//   ledger writes hours; hours of days before the last SPEND_HOURLY_DAYS full UTC days are folded
//   into their day's record (spend/ledger/fold.ts), because every store update rewrites the whole
//   store and hour records would be ~10x as many. A day record has the same additive shape; a
//   reader counts it whole in a window its day overlaps. Kept for SPEND_KEPT_DAYS; older history is
//   the audit log's (each line carries its usage and cost).
// - `budget:<key>:<period>`: one budget's count in one period (`2026-11-26T22`, `2026-11-26`,
//   `2026-11`), where key is the budget's own key (its index and selector, see budgetKey in
//   spend/core/budgets.ts) and the scope value it counts for (the agent, grant or end user).

export const SPEND_PREFIX = 'spend:';
export const BUDGET_PREFIX = 'budget:';
export const SPEND_KEPT_DAYS = 62;
/** Full UTC days before today whose usage stays hourly; older days are folded into one record per day. */
export const SPEND_HOURLY_DAYS = 2;

export interface SpendRecord {
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  /** Dollars for the priced requests, those priced at the fallback included. */
  cost_usd: number;
  /** Model answers counted. */
  requests: number;
  /** Of them, answers whose model had no price: their tokens are counted, their cost is not (never silently zero) unless at the fallback. */
  unpriced: number;
  /** Of them, answers that said nothing of their usage: counted as requests, no tokens unless estimated. */
  unknown: number;
  /** Of them, answers cut short (partial basis). */
  partial: number;
  /** Of the unpriced, answers priced at the fallback under a budget in dollars (their cost is in cost_usd). Absent in older records: 0. */
  fallback: number;
  /** Of the unknown, answers counted at their estimate (bytes as tokens) under a budget. Absent in older records: 0. */
  estimated: number;
}

export interface BudgetRecord {
  tokens: number;
  usd: number;
}

const part = (value: string | null | undefined): string => (value === null || value === undefined || value === '' ? '_' : encodeURIComponent(value));

/** `period`: an hour (`2026-11-26T22`, as the ledger writes) or a day (`2026-11-26`, as the fold writes). */
export function spendRecordId(period: string, agent: string | null, grant: string | null, endUser: string | null, model: string | null): string {
  return `${SPEND_PREFIX}${period}:${part(agent)}:${part(grant)}:${part(endUser)}:${part(model)}`;
}

export interface SpendRecordKey {
  /** What the record covers: one UTC hour, or one whole UTC day (folded hours). */
  grain: 'hour' | 'day';
  /** `2026-11-26T22` for an hour, `2026-11-26` for a day: both compare as text as the calendar does. */
  period: string;
  /** The UTC day the period is in (`2026-11-26`). */
  day: string;
  agent: string | null;
  grant: string | null;
  end_user: string | null;
  model: string | null;
}

const HOUR_PERIOD = /^\d{4}-\d{2}-\d{2}T\d{2}$/;
const DAY_PERIOD = /^\d{4}-\d{2}-\d{2}$/;

/**
 * What a `spend:` id names. Admitted: five parts, the first an hour or a day as records name them,
 * each other part `_` or valid percent-encoding. Anything else is undefined: readers skip it, the
 * prune and the fold leave it alone.
 */
export function parseSpendRecordId(id: string): SpendRecordKey | undefined {
  if (!id.startsWith(SPEND_PREFIX)) return undefined;
  const parts = id.slice(SPEND_PREFIX.length).split(':');
  if (parts.length !== 5) return undefined;
  const [period, agent, grant, endUser, model] = parts as [string, string, string, string, string];
  const grain = HOUR_PERIOD.test(period) ? 'hour' : DAY_PERIOD.test(period) ? 'day' : undefined;
  if (grain === undefined) return undefined;
  const back = (p: string): string | null => (p === '_' ? null : decodeURIComponent(p));
  try {
    return { grain, period, day: period.slice(0, 10), agent: back(agent), grant: back(grant), end_user: back(endUser), model: back(model) };
  } catch {
    // A malformed escape (`%zz`): not an id the ledger wrote.
    return undefined;
  }
}

/**
 * Whether a record counts in the window of UTC hours `firstHour` to `lastHour` (both included): an
 * hour record when its hour is in it, a day record when its day overlaps it (the whole day counts:
 * its hours are no longer told apart).
 */
export function spendInWindow(key: SpendRecordKey, firstHour: string, lastHour: string): boolean {
  if (key.grain === 'hour') return key.period >= firstHour && key.period <= lastHour;
  return key.day >= firstHour.slice(0, 10) && key.day <= lastHour.slice(0, 10);
}

/**
 * The first UTC day still kept hourly at `now`: today and the SPEND_HOURLY_DAYS full days before it.
 * The fold folds the hours of earlier days; a reader starts a window that begins in an earlier day at
 * that day's midnight, so its answer is the same before and after the fold.
 */
export const firstHourlyDay = (now: Date): string => dayOf(new Date(now.getTime() - SPEND_HOURLY_DAYS * 86_400_000));

export const budgetRecordId = (key: string, period: string): string => `${BUDGET_PREFIX}${key}:${period}`;

/** The UTC hour of `at` as records name it: `2026-11-26T22`. */
export const hourOf = (at: Date): string => at.toISOString().slice(0, 13);

/** The UTC day of `at` as records name it: `2026-11-26`. */
export const dayOf = (at: Date): string => at.toISOString().slice(0, 10);
