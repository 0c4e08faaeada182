import { type BurstState, freshBurst, rollBurst, teachBurst } from './burst.ts';
import type { AnomalySettings, Signal } from './settings.ts';

// One agent's history, as a store record (`anomaly:<agent>`), shared by every process and replica
// on the store. Bounded: at most MAX_GRANTS grants; per grant MAX_METHODS methods and MAX_CLASSES
// host-and-path classes; 168 hours of the week. Past a bound nothing more is learned, and what was
// not learned keeps firing (an agent cannot flood its history to make everything look usual).
// About 20 KiB at the most.

export const ANOMALY_PREFIX = 'anomaly:';
export const MAX_GRANTS = 32;
export const MAX_METHODS = 16;
export const MAX_CLASSES = 128;

export interface GrantHistory {
  methods: string[];
  /** `host:port /class` (path-class.ts). */
  classes: string[];
}

export interface AnomalyRecord {
  grants: Record<string, GrantHistory>;
  /** Hours of the week (0..167, in off_hours.tz) taught. */
  hours: number[];
  /**
   * The zone those hours were read in: after off_hours.tz changes, they teach nothing (Sat 03 in
   * UTC is not Sat 03 in Los Angeles) and are taught again. Absent: kept as they are.
   */
  hoursTz?: string | undefined;
  burst?: BurstState | undefined;
  /** The last flush of counts written (book.ts: a process knows its own counts are in the record read). */
  flushed?: string | undefined;
}

export function anomalyRecordId(agent: string): string {
  return `${ANOMALY_PREFIX}${agent}`;
}

/** What one request is, as the signals read it. */
export interface Seen {
  grant: string;
  method: string;
  /** `host:port`. */
  host: string;
  /** path-class.ts. */
  pathClass: string;
  /** Hour of the week in off_hours.tz, when off hours is on. */
  hourOfWeek: number | undefined;
}

export function emptyRecord(): AnomalyRecord {
  return { grants: {}, hours: [] };
}

/**
 * The record with what `seen` showed learned (a request let through as usual, an alert, or a
 * person's yes). `pending`: requests of the current window this process has not stored yet (a
 * taught burst counts them; they are stored by their own flush).
 */
export function learn(record: AnomalyRecord, seen: Seen, signals: readonly Signal[], settings: AnomalySettings, now: number, pending = 0): AnomalyRecord {
  const grants = { ...record.grants };
  let history = grants[seen.grant];
  if (history === undefined && Object.keys(grants).length < MAX_GRANTS) history = { methods: [], classes: [] };
  if (history !== undefined) {
    const methods = history.methods.includes(seen.method) || history.methods.length >= MAX_METHODS ? history.methods : [...history.methods, seen.method];
    const key = classKey(seen);
    const classes = history.classes.includes(key) || history.classes.length >= MAX_CLASSES ? history.classes : [...history.classes, key];
    grants[seen.grant] = { methods, classes };
  }
  const tz = settings.off_hours?.tz;
  const known = taughtHours(record, tz);
  const hours =
    seen.hourOfWeek === undefined || known.includes(seen.hourOfWeek) || !signals.some((s) => s.name === 'off_hours')
      ? known
      : [...known, seen.hourOfWeek].slice(0, 168);
  let burst = record.burst;
  if (settings.burst !== undefined && signals.some((s) => s.name === 'burst')) {
    const rolled = rollBurst(burst ?? freshBurst(now, settings.burst.perMs), now, settings.burst.perMs);
    const taught = teachBurst({ ...rolled, count: rolled.count + pending }, settings.burst);
    burst = { ...rolled, baseline: taught.baseline, dayBase: taught.dayBase };
  }
  const hoursTz = tz !== undefined && hours.length > 0 ? tz : record.hoursTz;
  return { grants, hours, ...(hoursTz !== undefined ? { hoursTz } : {}), ...(burst !== undefined ? { burst } : {}) };
}

/** The hours of the week taught in `tz`: none when they were taught in another zone. */
export function taughtHours(record: AnomalyRecord | undefined, tz: string | undefined): number[] {
  if (record === undefined) return [];
  return record.hoursTz === undefined || record.hoursTz === tz ? record.hours : [];
}

/** Whether learning `seen` would change the record (most requests: no, and nothing is written). */
export function wouldLearn(record: AnomalyRecord | undefined, seen: Seen): boolean {
  const history = record?.grants[seen.grant];
  if (history === undefined) return Object.keys(record?.grants ?? {}).length < MAX_GRANTS;
  if (!history.methods.includes(seen.method) && history.methods.length < MAX_METHODS) return true;
  return !history.classes.includes(classKey(seen)) && history.classes.length < MAX_CLASSES;
}

/** Requests admitted in `window` (its start) added to the record's count, the windows closed since folded in. */
export function addCounts(record: AnomalyRecord, window: number, n: number, perMs: number, now: number): AnomalyRecord {
  const rolled = rollBurst(record.burst ?? freshBurst(now, perMs), now, perMs);
  // Counts of a window already closed (a flush that came late) are dropped, not put on the next one.
  const burst = rolled.window === window ? { ...rolled, count: rolled.count + n } : rolled;
  return { ...record, burst };
}

export function classKey(seen: Pick<Seen, 'host' | 'pathClass'>): string {
  return `${seen.host} ${seen.pathClass}`;
}
