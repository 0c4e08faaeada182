// Folding old hourly `spend:` records into one record per UTC day (issue 63), inside one of the
// ledger's normal updates beside the prune (at most once an hour). A file-store update re-reads,
// re-serialises and fsyncs the whole store, so every store write (token refreshes, approvals, not
// only spend) pays for each record kept: 62 days of hours is ~10x the records of 60 days folded
// plus two days of hours (docs/perf/spend-ledger.md).
//
// Never a count in two records or in none: the fold is one store update (the file lock or the
// PostgreSQL advisory lock, with a re-read first), which writes each day record as what it held plus
// the hours and deletes those hours. An update that fails or is cut short writes nothing; one run
// after another (or by another process or replica) finds the hours gone and adds nothing.
//
// What it folds: hour records of days before firstHourlyDay whose fields are the ledger's (the
// SpendRecord counts as whole numbers from 0, the cost a finite number from 0; a field absent is 0,
// as readers count it), into a day record that is absent or of the same shape. Anything else stays
// as it is: a damaged number would otherwise be turned into a different one that readers count.
import type { StoreDraft } from '../../credentials/store/index.ts';
import { ExactSum } from '../core/exact-sum.ts';
import { firstHourlyDay, parseSpendRecordId, SPEND_PREFIX, type SpendRecord, spendRecordId } from '../core/records.ts';
import { ZERO_SPEND } from './counts.ts';

const FIELDS = Object.keys(ZERO_SPEND) as ReadonlyArray<keyof SpendRecord>;
const isCount = (n: unknown): boolean => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
const isUsd = (n: unknown): boolean => typeof n === 'number' && Number.isFinite(n) && n >= 0;

/** The record as the fold adds it, or undefined when it holds anything the ledger would not write. */
function admitted(value: unknown): SpendRecord | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  for (const [field, n] of Object.entries(record)) {
    if (!(FIELDS as readonly string[]).includes(field)) return undefined;
    if (!(field === 'cost_usd' ? isUsd(n) : isCount(n))) return undefined;
  }
  return { ...ZERO_SPEND, ...(record as Partial<SpendRecord>) };
}

/** Sums of one day's group, dollars without drift (the day record holds them to the last bit the sum has). */
class DaySum {
  readonly #counts: SpendRecord = { ...ZERO_SPEND };
  readonly #cost = new ExactSum();

  add(record: SpendRecord): void {
    for (const field of FIELDS) if (field !== 'cost_usd') this.#counts[field] += record[field];
    this.#cost.add(record.cost_usd);
  }

  get record(): SpendRecord {
    return { ...this.#counts, cost_usd: this.#cost.value };
  }
}

/** Folds the hours of days before firstHourlyDay(now) into their day records; returns how many hour records went. */
export function foldSpend(draft: StoreDraft, now: Date): number {
  const firstKept = firstHourlyDay(now);
  const days = new Map<string, Array<[string, SpendRecord]>>();
  for (const [id, value] of draft.entries<unknown>(SPEND_PREFIX)) {
    const key = parseSpendRecordId(id);
    if (key === undefined || key.grain !== 'hour' || key.day >= firstKept) continue;
    const record = admitted(value);
    if (record === undefined) continue;
    // The day id from the parsed parts: the same encoding whatever the hour id's spelling was.
    const dayId = spendRecordId(key.day, key.agent, key.grant, key.end_user, key.model);
    const hours = days.get(dayId);
    if (hours === undefined) days.set(dayId, [[id, record]]);
    else hours.push([id, record]);
  }
  let folded = 0;
  for (const [dayId, hours] of days) {
    const held = draft.get<unknown>(dayId);
    const base = held === undefined ? ZERO_SPEND : admitted(held);
    // A damaged day record: its hours stay hours (readers still count them), nothing is overwritten.
    if (base === undefined) continue;
    const sum = new DaySum();
    sum.add(base);
    for (const [, record] of hours) sum.add(record);
    draft.set(dayId, sum.record);
    for (const [id] of hours) if (draft.delete(id)) folded++;
  }
  return folded;
}
