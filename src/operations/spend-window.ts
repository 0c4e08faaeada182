// The window `keyway spend --since` and GET /api/spend?since= read. Spend records are hourly
// (spend/core/records.ts), so a window starts at the top of the UTC hour its `since` falls in: the
// listing then covers exactly the hours it names, never part of one. (Days older than the last two
// full UTC days are kept per day: the reader, operations/spend.ts windowStart, moves such a start
// back to its midnight.)

import { KeywayError } from '../errors/index.ts';

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
// The record's own hour (2026-11-26T22), or a time to the minute, second or fraction, with an
// optional zone; without one it is UTC, as the records are.
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})(?::(\d{2})(?::(\d{2})(\.\d{1,9})?)?)?(Z|[+-]\d{2}:\d{2})?$/;

/** The start of the UTC hour `at` falls in. */
export function hourStart(at: Date): Date {
  const t = at.getTime();
  return new Date(t - (((t % 3_600_000) + 3_600_000) % 3_600_000));
}

/** The start of the UTC month `at` falls in: the default window. */
export function monthStart(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
}

/** The start of the UTC day `at` falls in. */
export function dayStart(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
}

/**
 * `since` as given (an ISO date, an ISO date-time, or a duration back from now: 90m, 24h, 7d), moved
 * back to the start of its UTC hour; absent: the start of the current UTC month. Anything else is
 * refused (KeywayError usage, naming `label`), as is a time after `now`. The text is quoted in the
 * message: a time is never secret, and it is cut short.
 */
export function spendSince(text: string | undefined, now: Date, label: string): Date {
  if (text === undefined) return monthStart(now);
  const at = parseTime(text, now);
  if (at === undefined)
    throw new KeywayError(
      'usage',
      `${label}: expected an ISO date (2026-11-01), a date-time (2026-11-26T09:00Z) or a duration such as 24h or 7d, got "${text.slice(0, 40)}"`,
    );
  if (at.getTime() > now.getTime()) throw new KeywayError('usage', `${label}: ${at.toISOString()} is in the future`);
  return hourStart(at);
}

function parseTime(text: string, now: Date): Date | undefined {
  const relative = /^(\d{1,6})([mhd])$/.exec(text);
  if (relative) return new Date(now.getTime() - Number(relative[1]) * UNIT_MS[relative[2] as keyof typeof UNIT_MS]);
  const date = DATE.exec(text);
  if (date) return checked(Date.UTC(Number(date[1]), Number(date[2]) - 1, Number(date[3])), date);
  const time = DATE_TIME.exec(text);
  if (!time) return undefined;
  const [, y, mo, d, h, mi = '00', s = '00', fraction = '', zone = 'Z'] = time;
  const ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${fraction.slice(0, 4)}${zone}`);
  if (Number.isNaN(ms) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  // The calendar date must exist as written (2026-02-30 is not 2026-03-02).
  return checked(Date.UTC(Number(y), Number(mo) - 1, Number(d)), time) === undefined ? undefined : new Date(ms);
}

/** The UTC midnight of a written date, or undefined when the date does not exist (month 13, day 31 of a 30-day month). */
function checked(ms: number, parts: RegExpExecArray): Date | undefined {
  const at = new Date(ms);
  const same = at.getUTCFullYear() === Number(parts[1]) && at.getUTCMonth() === Number(parts[2]) - 1 && at.getUTCDate() === Number(parts[3]);
  return same ? at : undefined;
}
