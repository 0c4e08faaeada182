// A time's ISO 8601 text (what Date.prototype.toISOString gives: 2026-11-27T13:31:57.768Z), made
// with arithmetic alone.
//
// Why not V8's own: its first call builds V8's date cache, which starts ICU's time zones, and that
// pages in ~0.6 MiB of the node binary's data that then stays resident for the process's life, for
// a text that needs no time zone. The proxy writes this text on every audit line and nothing else
// in it needs the cache, so a proxy process that uses this one never builds it (bench/memory.ts,
// RSS after s2: the file-backed part 52.2 -> 51.4-51.6 MiB in 3 runs). Dates outside the years
// 0000-9999, which toISOString writes with a sign and six digits, are left to V8.

/** The first and last millisecond of the years 0000-9999. */
const FIRST_MS = -62_167_219_200_000;
const LAST_MS = 253_402_300_799_999;
const DAY_MS = 86_400_000;

const two = (n: number): string => (n < 10 ? `0${n}` : `${n}`);
const three = (n: number): string => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);
const four = (n: number): string => (n < 10 ? `000${n}` : n < 100 ? `00${n}` : n < 1000 ? `0${n}` : `${n}`);

/** The ISO text of `ms` (milliseconds since 1970, UTC), for a time within the years 0000-9999. */
export function isoTime(ms: number): string {
  const days = Math.floor(ms / DAY_MS);
  let rest = ms - days * DAY_MS;
  // The civil date of a day count (proleptic Gregorian, eras of 400 years starting 0000-03-01).
  const shifted = days + 719_468;
  const era = Math.floor(shifted / 146_097);
  const dayOfEra = shifted - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1;
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  return `${four(year)}-${two(month)}-${two(day)}T${two(hours)}:${two(minutes)}:${two(seconds)}.${three(rest - seconds * 1000)}Z`;
}

const v8ToIsoString = Date.prototype.toISOString;

function toIsoString(this: Date): string {
  const ms = this.getTime(); // a TypeError for anything but a Date, as V8's
  return ms >= FIRST_MS && ms <= LAST_MS ? isoTime(ms) : v8ToIsoString.call(this); // NaN: V8's RangeError
}

/**
 * Makes every Date's toISOString (and so JSON.stringify of a Date, and every library's use) this
 * file's, in this process: called by the proxy's composition root (app/index.ts) before anything
 * there writes a time. The text is the same for every Date (test/unit/iso-time.test.ts).
 */
export function useIsoTimeForDates(): void {
  // The point of this file (see its head): the same text and the same errors as V8's own.
  Date.prototype.toISOString = toIsoString;
}

/** Whether useIsoTimeForDates has run in this process. */
export function usesIsoTime(): boolean {
  return Date.prototype.toISOString === toIsoString;
}
