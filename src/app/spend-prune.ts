// What the spend ledger deletes from the store, inside one of its normal updates (at most once an
// hour): `spend:` records of hours older than SPEND_KEPT_DAYS, and day records (folded hours,
// app/spend-fold.ts) of days wholly older than that (older history is the audit log's),
// and `budget:` records of periods already over (a count never goes back to an ended period).
// Only ids it reads as its own are deleted; any other record under those prefixes stays.
import type { StoreDraft } from '../credentials/store/index.ts';
import { periodOf, type BudgetPer } from '../spend/budgets.ts';
import { BUDGET_PREFIX, hourOf, parseSpendRecordId, SPEND_KEPT_DAYS, SPEND_PREFIX } from '../spend/records.ts';

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
    // budget:<key>:<period>: a key never holds ':' (spend/budgets.ts), so the period follows the last one.
    const period = id.slice(id.lastIndexOf(':') + 1);
    const per = perOf(period);
    if (per === undefined) continue;
    // The same format compares as the calendar does.
    if (period < periodOf(per, now) && draft.delete(id)) deleted++;
  }
  return deleted;
}
