// The audit line format and its hash chain. One definition of "the bytes that are hashed" is shared
// by the writer (which seals lines) and by verify (which recomputes them), so the two cannot drift.

import { boundEvent } from './bound.ts';
import type { AuditEvent, AuditLine } from './event.ts';
import { lineText } from './line-text.ts';
import { EVENT_FIELDS } from './record-fields.ts';
import { sha256hex, stripQuery } from './record-text.ts';

export type { AuditDecision, AuditEvent, AuditLine } from './event.ts';

/** The `prev` of the first line of a chain. */
export const GENESIS_HASH = '0'.repeat(64);

export { EVENT_FIELDS };

const FIXED = new Set<string>(EVENT_FIELDS);
const CHAIN = new Set<string>(['seq', 'prev', 'hash']);
const DECISIONS = new Set<string>(['inject', 'tunnel', 'deny', 'error', 'admin', 'self_check', 'approval']);
const HEX64 = /^[0-9a-f]{64}$/;

/**
 * The event fields in their fixed order, extras sorted by name. Sorting (rather than keeping the
 * caller's insertion order) makes the order a function of the key set alone, so verify can rebuild
 * the exact hashed text from a parsed line. Chain fields are never taken from the input.
 */
function orderFields(event: AuditEvent | AuditLine, replica?: string): Record<string, unknown> {
  // Read as a plain record: a line read back may carry extras this version does not know.
  const src = event as unknown as Readonly<Record<string, unknown>>;
  const out: Record<string, unknown> = {};
  for (const key of EVENT_FIELDS) out[key] = src[key];
  // Only the extras need sorting (usually none or one: this runs for every request).
  // `__proto__` would set the prototype rather than a field, so it can never round-trip.
  const extras = Object.keys(src).filter((key) => !FIXED.has(key) && !CHAIN.has(key) && key !== '__proto__');
  // A stamped replica takes its sorted place among the extras, where verify will look for it.
  const stamp = replica !== undefined && src['replica'] === undefined;
  if (stamp && !extras.includes('replica')) extras.push('replica');
  if (extras.length > 1) extras.sort();
  for (const key of extras) out[key] = stamp && key === 'replica' ? replica : src[key];
  return out;
}

/**
 * The fields parseLine() relies on. The types already demand them; checking at write() keeps a
 * caller's mistake from producing a line that verify would report as unparseable (a false alarm).
 */
export function checkEvent(event: AuditEvent): string | null {
  if (typeof event.ts !== 'string') return 'ts must be a string';
  if (typeof event.host !== 'string') return 'host must be a string';
  if (!DECISIONS.has(event.decision)) return 'decision must be inject, tunnel, deny, error or admin';
  return null;
}

/**
 * Serialise an event once, when it is queued: a value JSON cannot hold (a BigInt, a cycle) then fails
 * that one write instead of the batch it would have joined.
 */
export function serializeEvent(whole: AuditEvent, replica?: string): string {
  // Agent-controlled fields cut to their bounds (bound.ts); the same object when none is over.
  const event = boundEvent(whole);
  // Written field by field from the schema (line-text.ts): no ordered copy, whatever order the
  // stages added the extras in. What it cannot vouch for goes the generic way, to the same bytes.
  return lineText(event, replica) ?? serializeOrdered(event, replica);
}

/** The generic way to the line's text: an ordered copy, stringified (what verify rebuilds from a parsed line). */
export function serializeOrdered(event: AuditEvent, replica?: string): string {
  const ordered = orderFields(event, replica);
  if (typeof ordered['path'] === 'string') ordered['path'] = stripQuery(ordered['path']);
  return JSON.stringify(ordered);
}

/**
 * The event JSON with `seq` and `prev` appended as its last fields, without the closing brace: the
 * hashed text is this and `}`, the line this, `hash` and `}`. (Built once, so neither is a slice of
 * the other: this runs for every line written and every line verified.)
 */
function chainedOpen(bodyJson: string, seq: number, prev: string): string {
  const open = bodyJson.length > 2 ? `${bodyJson.slice(0, -1)},` : '{';
  return `${open}"seq":${seq},"prev":${JSON.stringify(prev)}`;
}

/** Give a serialised event its place in the chain. Returns the line (with `\n`) and its hash. */
export function sealLine(bodyJson: string, seq: number, prev: string): { line: string; hash: string } {
  const open = chainedOpen(bodyJson, seq, prev);
  const hash = sha256hex(`${prev}\n${open}}`);
  return { line: `${open},"hash":"${hash}"}\n`, hash };
}

/** The hash a parsed line should carry, given its own content, `seq` and `prev`. */
export function expectedHash(line: AuditLine): string {
  return resealLine(line).hash;
}

/**
 * A parsed line sealed again as the writer seals it: the bytes keyway writes for that content (no
 * newline) and their hash. The hash alone covers a re-serialisation, so bytes that parse to the same
 * record would pass it; canonical.ts holds a line to these bytes.
 */
export function resealLine(line: AuditLine): { line: string; hash: string } {
  const sealed = sealLine(JSON.stringify(orderFields(line)), line.seq, line.prev);
  return { line: sealed.line.slice(0, -1), hash: sealed.hash };
}

/**
 * Parse one log line. Returns null for anything that is not a chained audit line; callers decide
 * whether that is a problem (verify) or something to skip (query).
 */
export function parseLine(text: string): AuditLine | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const rec = value as Record<string, unknown>;
  const ok =
    typeof rec['ts'] === 'string' &&
    typeof rec['host'] === 'string' &&
    typeof rec['decision'] === 'string' &&
    DECISIONS.has(rec['decision']) &&
    Number.isSafeInteger(rec['seq']) &&
    typeof rec['prev'] === 'string' &&
    HEX64.test(rec['prev']) &&
    typeof rec['hash'] === 'string' &&
    HEX64.test(rec['hash']);
  return ok ? (rec as unknown as AuditLine) : null;
}
