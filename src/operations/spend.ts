// What model traffic used and cost, read from the spend ledger's `spend:` records in the store
// (hourly, and daily for days older than the last SPEND_HOURLY_DAYS full UTC days, spend/core/records.ts): one reader for `keyway spend`, GET /api/spend and the dashboard's Spend page, so the three
// cannot disagree. Reads only (no keyway need run); nothing in it is secret: ids, model names,
// counts and dollars.
//
// The answer's shape is documented (docs/spend.md, "Seeing spend") and kept stable:
//   {since, until, totals: {…counts}, rows: [{agent, grant, end_user, model, …counts}], budgets: [BudgetRow]}

import type { BudgetConfig } from '../config/spend.ts';
import type { RecordSource } from '../credentials/store/credential-store.ts';
import { ExactSum, roundUsd } from '../spend/core/exact-sum.ts';
import { firstHourlyDay, hourOf, parseSpendRecordId, SPEND_PREFIX, type SpendRecord, spendInWindow } from '../spend/core/records.ts';
import { type BudgetRow, budgetStandings } from './spend-budgets.ts';

export type { BudgetRow } from './spend-budgets.ts';

/** Token and request counts, and dollars for the priced answers. */
export interface SpendCounts {
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  cost_usd: number;
  /** Answers whose model had no price: their tokens are counted above, their cost only when at the fallback. */
  unpriced: number;
  /** Answers that said nothing of their usage: counted as requests, with tokens only when estimated. */
  unknown: number;
  /** Answers cut short: counted for what was delivered. */
  partial: number;
  /** Of the unpriced, answers priced at the fallback under a budget in dollars: their cost is in cost_usd. */
  fallback: number;
  /** Of the unknown, answers counted at an estimate from their bytes under a budget: their tokens are in the counts. */
  estimated: number;
}

export interface SpendRow extends SpendCounts {
  /** null: an anonymous agent, no end user (no identity token), a model nobody named. */
  agent: string | null;
  grant: string | null;
  end_user: string | null;
  model: string | null;
}

export interface SpendReport {
  /**
   * The window's start (ISO 8601): the top of the UTC hour `since` fell in, or the UTC midnight
   * before it when that day's usage is kept per day (folded), which then counts whole.
   */
  since: string;
  /** When it was read (ISO 8601): the hour it falls in is counted up to then. */
  until: string;
  totals: SpendCounts;
  /** One per agent, grant, end user and model, sorted by them. */
  rows: SpendRow[];
  budgets: BudgetRow[];
}

export interface SpendQuery {
  /** The window's start; records of the hour it falls in and after are counted. */
  since: Date;
  now: Date;
  agent?: string | undefined;
  grant?: string | undefined;
}

/** The whole-number counts of SpendCounts (cost_usd apart: summed without drift). */
export const SPEND_COUNT_FIELDS = [
  'requests',
  'input_tokens',
  'output_tokens',
  'cached_input_tokens',
  'cache_write_tokens',
  'unpriced',
  'unknown',
  'partial',
  'fallback',
  'estimated',
] as const;

/** Sums of one group of records: whole numbers added as they are, dollars without drift. */
class Sums {
  readonly counts = Object.fromEntries(SPEND_COUNT_FIELDS.map((k) => [k, 0])) as Record<(typeof SPEND_COUNT_FIELDS)[number], number>;
  readonly #cost = new ExactSum();

  add(record: SpendRecord): void {
    for (const key of SPEND_COUNT_FIELDS) this.counts[key] += wholeOf(record[key]);
    const cost = record.cost_usd;
    if (typeof cost === 'number' && Number.isFinite(cost) && cost >= 0) this.#cost.add(cost);
  }

  get result(): SpendCounts {
    return { ...this.counts, cost_usd: roundUsd(this.#cost.value) };
  }
}

/** A count as a record holds it: a whole number from 0 up; anything else (a damaged record) counts as 0. */
const wholeOf = (n: unknown): number => (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : 0);

/**
 * The first hour a window from `since` counts: its own hour, or its day's first hour when the day is
 * before firstHourlyDay. Decided by the calendar, not by whether a fold has run yet, so the answer is
 * the same before and after one (a day's hours and its day record cover the same whole day).
 */
export function windowStart(since: Date, now: Date): string {
  const hour = hourOf(since);
  return hour.slice(0, 10) < firstHourlyDay(now) ? `${hour.slice(0, 10)}T00` : hour;
}

export function spendReport(store: RecordSource, budgets: readonly BudgetConfig[], query: SpendQuery): SpendReport {
  const first = windowStart(query.since, query.now);
  const last = hourOf(query.now);
  const groups = new Map<string, { key: Omit<SpendRow, keyof SpendCounts>; sums: Sums }>();
  const totals = new Sums();
  for (const [id, record] of store.entries<SpendRecord>(SPEND_PREFIX)) {
    const key = parseSpendRecordId(id);
    // A record of an hour to come (a replica's clock ahead) is counted when its hour comes; a day
    // record (folded hours) counts whole in any window its day overlaps.
    if (key === undefined || !spendInWindow(key, first, last)) continue;
    if (query.agent !== undefined && key.agent !== query.agent) continue;
    if (query.grant !== undefined && key.grant !== query.grant) continue;
    const row = { agent: key.agent, grant: key.grant, end_user: key.end_user, model: key.model };
    const group = JSON.stringify([row.agent, row.grant, row.end_user, row.model]);
    let found = groups.get(group);
    if (found === undefined) {
      found = { key: row, sums: new Sums() };
      groups.set(group, found);
    }
    found.sums.add(record);
    totals.add(record);
  }
  const rows = [...groups.values()].map(({ key, sums }) => ({ ...key, ...sums.result })).sort(byKey);
  const filter = { ...(query.agent !== undefined ? { agent: query.agent } : {}), ...(query.grant !== undefined ? { grant: query.grant } : {}) };
  return {
    since: new Date(`${first}:00:00Z`).toISOString(),
    until: query.now.toISOString(),
    totals: totals.result,
    rows,
    budgets: budgetStandings(store, budgets, query.now, filter),
  };
}

const order = (v: string | null): string => v ?? '';

function byKey(a: SpendRow, b: SpendRow): number {
  for (const field of ['agent', 'model', 'grant', 'end_user'] as const) {
    // Code-point order, the same on every machine (localeCompare follows the locale).
    const x = order(a[field]);
    const y = order(b[field]);
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
