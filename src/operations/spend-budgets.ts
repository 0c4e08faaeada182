// Where each budget of the config stands now, read from the ledger's `budget:` records (the counts
// every process and replica adds to; a running keyway's last second may not be in them yet). For
// `keyway spend`, GET /api/spend and the dashboard.

import type { Config } from '../config/index.ts';
import type { BudgetConfig } from '../config/spend.ts';
import type { RecordSource } from '../credentials/store/credential-store.ts';
import { AGENT_PREFIX, type StoredAgent } from '../credentials/agent-record.ts';
import { readStoredBudget } from '../delegation/stored-budget.ts';
import { budgetKey, limitOf, periodEnd, periodOf, unitOf } from '../spend/core/budgets.ts';
import { roundUsd } from '../spend/core/exact-sum.ts';
import { BUDGET_PREFIX, type BudgetRecord, parseSpendRecordId, SPEND_PREFIX, type SpendRecord } from '../spend/core/records.ts';

/**
 * The config's budgets, then (given the store) each delegated agent's own (`agents delegate
 * --budget`, named `agents.ID.budget`). The one place that knows where they are: until the config's
 * schema carries `budgets:` (typed BudgetConfig), a config without them has none.
 */
export function budgetsOf(config: Config, store?: RecordSource): readonly BudgetConfig[] {
  const budgets = (config as Config & { budgets?: readonly BudgetConfig[] | undefined }).budgets;
  const own = Array.isArray(budgets) ? budgets : [];
  if (store === undefined) return own;
  const children: BudgetConfig[] = [];
  for (const [, stored] of store.entries<StoredAgent>(AGENT_PREFIX)) {
    if (Object.hasOwn(config.agents, stored.id)) continue;
    const budget = readStoredBudget(stored.id, stored.budget).budget;
    if (budget !== undefined) children.push(budget);
  }
  return children.length === 0 ? own : [...own, ...children.sort((a, b) => a.name.localeCompare(b.name))];
}

/** One budget's count for one scope value (a `*` budget has one per agent, grant or end user seen this period). */
export interface BudgetRow {
  name: string;
  /** The selectors, a `*` one replaced by the value this row counts for (still `*` when none was seen this period). */
  agent?: string;
  grant?: string;
  end_user?: string;
  /** The scope value the count is kept under, as the ledger keys it: `agent=ci-bot` for a `*` budget, '' otherwise, `*` for a `*` budget nothing has counted under this period. */
  scope: string;
  unit: 'usd' | 'tokens';
  limit: number;
  used: number;
  per: BudgetConfig['per'];
  /** When the current period ends (UTC, ISO 8601): the count starts again from zero. */
  resets_at: string;
  /** What happens at the limit: refused (429 budget_exceeded), or held for a person. */
  over: BudgetConfig['over'];
  warn_at?: number;
  /**
   * Answers this period, in what the row counts, priced at the fallback (their model had no price
   * of its own) and counted at an estimate from their bytes (they said nothing of their usage): read
   * from the spend records of the period's hours and days, so a flag, not part of `used`.
   */
  fallback: number;
  estimated: number;
}

const SELECTORS = ['agent', 'grant', 'end_user'] as const;
type Selector = (typeof SELECTORS)[number];

/** Each budget's standing at `now`; with `filter`, the rows that can count that agent's or grant's traffic. */
export function budgetStandings(
  store: RecordSource,
  budgets: readonly BudgetConfig[],
  now: Date,
  filter: { agent?: string; grant?: string } = {},
): BudgetRow[] {
  const rows: BudgetRow[] = [];
  for (const budget of budgets) {
    const period = periodOf(budget.per, now);
    const prefix = `${BUDGET_PREFIX}${budgetKey(budget, '')}`;
    const seen: BudgetRow[] = [];
    for (const [id, record] of store.entries<BudgetRecord>(prefix)) {
      // budget:<key>:<period>; a key never holds ':' (budgets.ts), so the period is after the last one.
      const cut = id.lastIndexOf(':');
      if (cut < prefix.length || id.slice(cut + 1) !== period) continue;
      const scope = id.slice(prefix.length, cut);
      const values = scopeValues(scope);
      if (values === undefined) continue;
      seen.push(rowOf(budget, scope, values, record, now));
    }
    const counted = seen.length > 0 ? seen : [rowOf(budget, wild(budget) ? '*' : '', {}, undefined, now)];
    const shown = counted.filter((row) => applies(row.agent, filter.agent) && applies(row.grant, filter.grant));
    for (const row of shown) flagRow(store, row, period);
    rows.push(...shown);
  }
  return rows;
}

/** The row's fallback-priced and estimated answers in `period` (spend records are kept per hour, older days per day). */
function flagRow(store: RecordSource, row: BudgetRow, period: string): void {
  for (const [id, record] of store.entries<SpendRecord>(SPEND_PREFIX)) {
    const key = parseSpendRecordId(id);
    // An hour record is in an hour, day or month period its text starts with; a day record in a day or month.
    if (key === undefined || !key.period.startsWith(period)) continue;
    if (!matches(row.agent, key.agent) || !matches(row.grant, key.grant) || !matches(row.end_user, key.end_user)) continue;
    row.fallback += countOf(record.fallback);
    row.estimated += countOf(record.estimated);
  }
}

/** A row's selector against a record's value: absent counts every value; `*` (nothing counted under it yet) none. */
const matches = (selector: string | undefined, value: string | null): boolean => selector === undefined || (selector !== '*' && selector === value);

const countOf = (n: unknown): number => (typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : 0);

const wild = (budget: BudgetConfig): boolean => SELECTORS.some((name) => budget[name] === '*');

/** A selector shown beside --agent/--grant: absent (counts everyone's) or `*` or the very value. */
const applies = (selector: string | undefined, wanted: string | undefined): boolean =>
  wanted === undefined || selector === undefined || selector === '*' || selector === wanted;

function rowOf(budget: BudgetConfig, scope: string, values: Partial<Record<Selector, string>>, record: BudgetRecord | undefined, now: Date): BudgetRow {
  const unit = unitOf(budget);
  const row: BudgetRow = {
    name: budget.name,
    scope,
    unit,
    limit: limitOf(budget),
    used: 0,
    per: budget.per,
    resets_at: '',
    over: budget.over,
    fallback: 0,
    estimated: 0,
  };
  for (const name of SELECTORS) {
    const selector = budget[name];
    if (selector !== undefined) row[name] = selector === '*' ? (values[name] ?? '*') : selector;
  }
  const used = unit === 'usd' ? record?.usd : record?.tokens;
  row.used = typeof used === 'number' && Number.isFinite(used) ? (unit === 'usd' ? roundUsd(used) : used) : 0;
  row.resets_at = periodEnd(budget.per, now).toISOString();
  if (budget.warn_at !== undefined) row.warn_at = budget.warn_at;
  return row;
}

/** `agent=ci-bot,end_user=alice` (each value encodeURIComponent'd) to its values; undefined when it does not read as one. */
function scopeValues(scope: string): Partial<Record<Selector, string>> | undefined {
  const out: Partial<Record<Selector, string>> = {};
  if (scope === '') return out;
  for (const part of scope.split(',')) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq) as Selector;
    if (eq < 0 || !SELECTORS.includes(name) || out[name] !== undefined) return undefined;
    try {
      out[name] = decodeURIComponent(part.slice(eq + 1));
    } catch {
      return undefined;
    }
  }
  return out;
}
