// Time windows for rules: `hours: "09:00-18:00"`, `days: [mon, …]`, `tz: Europe/Paris` (IANA,
// default UTC). Local weekday and time come from Intl.DateTimeFormat, so daylight saving is the
// platform's tz database, with no dependency. Pure: the caller passes `now`.
//
// Hours are [start, end): 09:00-18:00 includes 09:00 and excludes 18:00; 00:00-24:00 is the whole
// day. A window whose end is before its start runs overnight (22:00-06:00), and belongs to the day
// it starts on: with `days: [fri]`, Saturday 02:00 is inside and Friday 02:00 is not.

import { parseHours, timeZoneError, WEEKDAYS, type Weekday } from '../config/index.ts';

export interface LocalTime {
  /** Index into WEEKDAYS (0 = mon). */
  day: number;
  /** Minutes since local midnight. */
  minute: number;
}

export interface TimeWindow {
  /** e.g. `09:00-18:00 mon-fri Europe/Paris`. */
  readonly description: string;
  readonly tz: string;
  contains(now: Date): boolean;
  /** The local time a request was judged at, for explanations: `sat 10:30 Europe/Paris`. */
  describeNow(now: Date): string;
}

const SHORT_DAY: Record<string, number> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

/** A formatter for `tz`, or an error message when the time zone is unknown. */
export function localClock(tz: string): ((now: Date) => LocalTime) | string {
  const unknown = timeZoneError(tz);
  if (unknown !== undefined) return unknown;
  const format = new Intl.DateTimeFormat('en-US', { timeZone: tz, weekday: 'short', hour: 'numeric', minute: 'numeric', hourCycle: 'h23' });
  return (now) => {
    let day = 0;
    let hour = 0;
    let minute = 0;
    for (const part of format.formatToParts(now)) {
      if (part.type === 'weekday') day = SHORT_DAY[part.value] ?? 0;
      else if (part.type === 'hour') hour = Number(part.value) % 24;
      else if (part.type === 'minute') minute = Number(part.value);
    }
    return { day, minute: hour * 60 + minute };
  };
}

export function compileTimeWindow(options: {
  hours?: string | undefined;
  days?: readonly Weekday[] | undefined;
  tz?: string | undefined;
}): TimeWindow | { key: 'hours' | 'days' | 'tz'; message: string } {
  const tz = options.tz ?? 'UTC';
  const clock = localClock(tz);
  if (typeof clock === 'string') return { key: 'tz', message: clock };
  let hours: { start: number; end: number } | undefined;
  if (options.hours !== undefined) {
    const parsed = parseHours(options.hours);
    if (typeof parsed === 'string') return { key: 'hours', message: parsed };
    hours = parsed;
  }
  if (options.days !== undefined && options.days.length === 0) return { key: 'days', message: 'expected at least one day (leave days out for every day)' };
  const days = options.days === undefined ? undefined : new Set(options.days.map((d) => WEEKDAYS.indexOf(d)));
  const description = [options.hours, options.days ? describeDays(options.days) : undefined, tz].filter(Boolean).join(' ');
  return {
    description,
    tz,
    contains(now) {
      const local = clock(now);
      if (hours === undefined) return days === undefined || days.has(local.day);
      const { start, end } = hours;
      let windowDay: number;
      if (start < end) {
        if (local.minute < start || local.minute >= end) return false;
        windowDay = local.day;
      } else if (local.minute >= start) {
        windowDay = local.day;
      } else if (local.minute < end) {
        windowDay = (local.day + 6) % 7; // the early-morning part belongs to yesterday's window
      } else {
        return false;
      }
      return days === undefined || days.has(windowDay);
    },
    describeNow(now) {
      const local = clock(now);
      return `${WEEKDAYS[local.day]} ${pad(Math.floor(local.minute / 60))}:${pad(local.minute % 60)} ${tz}`;
    },
  };
}

/** `mon-fri` for a run of consecutive days in week order, else `mon,wed,fri`. */
export function describeDays(days: readonly Weekday[]): string {
  const indexes = [...new Set(days.map((d) => WEEKDAYS.indexOf(d)))].sort((a, b) => a - b);
  const first = indexes[0];
  const last = indexes.at(-1);
  if (first !== undefined && last !== undefined && indexes.length >= 3 && last - first === indexes.length - 1) {
    return `${WEEKDAYS[first]}-${WEEKDAYS[last]}`;
  }
  return indexes.map((i) => WEEKDAYS[i]).join(',');
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}
