// What the spend ledger deletes from the store, inside one of its normal updates (at most once an
// hour): `spend:` records of hours older than SPEND_KEPT_DAYS, and day records (folded hours,
// spend/ledger/fold.ts) of days wholly older than that (older history is the audit log's),
// and `budget:` records of periods over for more than BUDGET_KEPT_AFTER_MS.
// Only ids it reads as its own are deleted; any other record under those prefixes stays.
//
// Why the margin: a period is "over" by this process's clock, and a clock can be wrong and then
// corrected (a laptop waking with a stale clock, an NTP step, a person setting it). Deleting every
// period before the current one made a clock an hour ahead delete the real current hour's count,
// and once the clock came back that hour's budget counted from zero (issue 86: 64,284 tokens through
// a 30,000-token hour budget). A count is kept until its period ended two days ago, so a clock that
// jumps by up to two days and comes back finds every count it left. What a jump still does is said
// in docs/spend.md (How budgets are counted).
import type { StoreDraft } from '../../credentials/store/index.ts';
import { periodOf, type BudgetPer } from '../core/budgets.ts';
import { BUDGET_PREFIX, hourOf, parseSpendRecordId, SPEND_KEPT_DAYS, SPEND_PREFIX } from '../core/records.ts';

const HOUR = /^\d{4}-\d{2}-\d{2}T\d{2}$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const MONTH = /^\d{4}-\d{2}$/;

/** A period as record ids name it, and which kind it is; undefined for anything else. */
function perOf(period: string): BudgetPer | undefined {
  if (HOUR.test(period)) return 'hour';
  if (DAY.test(period)) return 'day';
  if (MONTH.test(period)) return 'month';
  return undefined;
}

/** How long a budget count is kept after its period ended: the clock jump it survives. */
export const BUDGET_KEPT_AFTER_MS = 2 * 86_400_000;

/** Deletes the records past keeping at `now`; returns how many. */
export function pruneSpend(draft: StoreDraft, now: Date): number {
  let deleted = 0;
  const oldestHour = hourOf(new Date(now.getTime() - SPEND_KEPT_DAYS * 86_400_000));
  for (const [id] of draft.entries(SPEND_PREFIX)) {
    const key = parseSpendRecordId(id);
    if (key === undefined) continue;
    // A day goes when its last hour would have: a day part of which is still kept stays whole.
    const old = key.grain === 'hour' ? key.period < oldestHour : key.day < oldestHour.slice(0, 10);
    if (old && draft.delete(id)) deleted++;
  }
  for (const [id] of draft.entries(BUDGET_PREFIX)) {
    // budget:<key>:<period>: a key never holds ':' (spend/core/budgets.ts), so the period follows the last one.
    const period = id.slice(id.lastIndexOf(':') + 1);
    const per = perOf(period);
    if (per === undefined) continue;
    // The same format compares as the calendar does: the period that held `now` minus the margin,
    // and every one before it, ended more than the margin ago.
    if (period < periodOf(per, new Date(now.getTime() - BUDGET_KEPT_AFTER_MS)) && draft.delete(id)) deleted++;
  }
  return deleted;
}
