// The pruned record: what rotation deleted, kept beside the head file (`data/audit-head-pruned.json`).
//
//   {seq, hash, mac, ranges: [{first_seq, last_seq, files, bytes, pruned_at, age_ms, first_ts,
//    last_ts, prunings}, ...], ranges_mac}
//
// `seq`/`hash` name the last line deleted: verify starts the chain there, so the oldest kept file
// must continue from exactly that line and any other file removed shows as a gap. `ranges` say
// what each pruning deleted (seq range, bytes, when, how old its newest line was), so verify can
// name them instead of saying "intact" over a log that lost lines.
//
// Why a record here rather than an `audit_pruned` line in the chain: the line would itself be pruned
// a few rotations later (only `keep` files stay), exactly when the history matters, and writing a
// line from inside a rotation, mid-batch and under the lock, would change the batch's accounting on
// the hot path. The record is as hard to forge as the chain: the chain's own hashes can be recomputed
// by anyone who can edit the file; what makes either tamper-evident is an HMAC under the head key
// (derived from the master key, in the store), which neither the agent (it cannot write files at all)
// nor someone with only logs/ access holds. `mac` keeps its old form, so a keyway from before ranges
// still reads the record; `ranges_mac` binds the ranges to that seq and hash.
//
// Bounded: past MAX_RANGES the two oldest ranges are folded into one (their `prunings` add up), so
// the record stays a few tens of KiB however long keyway runs, and still covers every seq deleted.

import { createHmac } from 'node:crypto';
import { parseHeadRecord, readIfExists, sameMac, writeHeadRecord, type ChainHead, type HeadState } from './head.ts';

/** One pruning: the files rotation deleted together (or several folded, `prunings` > 1). */
export interface PrunedRange {
  first_seq: number;
  last_seq: number;
  files: number;
  bytes: number;
  /** When they were deleted (the latest of the folded prunings). */
  pruned_at: string;
  /** How long before deletion the newest deleted file was last written (its mtime): the youngest line's age. */
  age_ms: number;
  /** `ts` of the first and last line deleted; null when the line could not be read. */
  first_ts: string | null;
  last_ts: string | null;
  prunings: number;
}

/**
 * The record as read. `ranges`: 'ok' with the list; 'absent' when the record predates ranges (a
 * keyway that did not record prunings yet pruned, and its ranges are unknown); 'bad_mac' or 'unreadable' otherwise.
 */
export type PrunedState = HeadState & { ranges?: { kind: 'ok'; list: PrunedRange[] } | { kind: 'absent' | 'bad_mac' | 'unreadable' } };

export const MAX_RANGES = 100;

/** Where the pruned record lives: beside the head file (`data/audit-head.json` -> `data/audit-head-pruned.json`). */
export function prunedPathFor(headPath: string): string {
  return headPath.endsWith('.json') ? `${headPath.slice(0, -5)}-pruned.json` : `${headPath}-pruned.json`;
}

function prunedMac(key: Buffer, head: ChainHead): string {
  // Prefixed so a head file's MAC can never pass as a pruned record's.
  return createHmac('sha256', key).update(`pruned:${head.seq}:${head.hash}`).digest('hex');
}

function rangesMac(key: Buffer, head: ChainHead, ranges: PrunedRange[]): string {
  return createHmac('sha256', key)
    .update(`pruned-ranges:${head.seq}:${head.hash}:${JSON.stringify(ranges)}`)
    .digest('hex');
}

/** Record the last line removed by pruning and every range pruned so far. Call only under the audit lock. */
export async function writePruned(path: string, key: Buffer, head: ChainHead, ranges: PrunedRange[]): Promise<void> {
  // Written field by field in one order, so the MAC's JSON is the same text a reader rebuilds.
  const list = ranges.map(canonical);
  await writeHeadRecord(path, head, prunedMac(key, head), { ranges: list, ranges_mac: rangesMac(key, head, list) });
}

export async function readPruned(path: string, key: Buffer): Promise<PrunedState> {
  const text = await readIfExists(path);
  if (text === null) return { kind: 'missing' };
  const state: PrunedState = parseHeadRecord(text, (h) => prunedMac(key, h));
  if (state.kind !== 'ok') return state;
  const value = JSON.parse(text) as Record<string, unknown>;
  if (value['ranges'] === undefined && value['ranges_mac'] === undefined) return { ...state, ranges: { kind: 'absent' } };
  const list = parseRanges(value['ranges']);
  const mac = value['ranges_mac'];
  if (list === null || typeof mac !== 'string') return { ...state, ranges: { kind: 'unreadable' } };
  if (!sameMac(mac, rangesMac(key, state.head, list))) return { ...state, ranges: { kind: 'bad_mac' } };
  return { ...state, ranges: { kind: 'ok', list } };
}

/** `ranges` with one more pruning at the end, the oldest folded together past MAX_RANGES. */
export function withRange(ranges: readonly PrunedRange[], added: PrunedRange): PrunedRange[] {
  const out = [...ranges, added];
  while (out.length > MAX_RANGES) {
    const [a, b] = out as [PrunedRange, PrunedRange];
    out.splice(0, 2, {
      first_seq: a.first_seq,
      last_seq: b.last_seq,
      files: a.files + b.files,
      bytes: a.bytes + b.bytes,
      pruned_at: b.pruned_at,
      age_ms: Math.min(a.age_ms, b.age_ms),
      first_ts: a.first_ts,
      last_ts: b.last_ts,
      prunings: a.prunings + b.prunings,
    });
  }
  return out;
}

function canonical(r: PrunedRange): PrunedRange {
  return {
    first_seq: r.first_seq,
    last_seq: r.last_seq,
    files: r.files,
    bytes: r.bytes,
    pruned_at: r.pruned_at,
    age_ms: r.age_ms,
    first_ts: r.first_ts,
    last_ts: r.last_ts,
    prunings: r.prunings,
  };
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isTs = (v: unknown): v is string | null => v === null || typeof v === 'string';

function parseRanges(value: unknown): PrunedRange[] | null {
  if (!Array.isArray(value) || value.length > MAX_RANGES) return null;
  const out: PrunedRange[] = [];
  for (const item of value as unknown[]) {
    if (typeof item !== 'object' || item === null) return null;
    const r = item as Record<string, unknown>;
    const counts = [r['first_seq'], r['last_seq'], r['files'], r['bytes'], r['age_ms'], r['prunings']];
    if (!counts.every(isCount) || typeof r['pruned_at'] !== 'string' || !isTs(r['first_ts']) || !isTs(r['last_ts'])) return null;
    out.push(canonical(r as unknown as PrunedRange));
  }
  return out;
}
