import type { HoursSettings } from './settings.ts';

// Off hours: a request outside the agent's usual hours (the configured days and hours, read in the
// configured time zone) in an hour of the week it was never taught (a person's yes, or an alert,
// teaches that hour: 168 hours a week, so the record stays small).

const formatters = new Map<string, Intl.DateTimeFormat>();
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, weekday: 'short', hour: 'numeric', hourCycle: 'h23' });
    formatters.set(tz, f);
  }
  return f;
}

/** The day of the week (0 = Sunday) and hour (0..23) at `now` in `tz`. */
export function localTime(now: Date, tz: string): { day: number; hour: number } {
  let day = 0;
  let hour = 0;
  for (const part of formatter(tz).formatToParts(now)) {
    if (part.type === 'weekday') day = DAYS.indexOf(part.value);
    else if (part.type === 'hour') hour = Number(part.value) % 24;
  }
  return { day, hour };
}

/** 0..167: the hour of the week in `tz`. */
export function hourOfWeek(now: Date, tz: string): number {
  const { day, hour } = localTime(now, tz);
  return day * 24 + hour;
}

export function withinHours(now: Date, hours: HoursSettings): boolean {
  const { day, hour } = localTime(now, hours.tz);
  const inHours = hours.from <= hours.to ? hour >= hours.from && hour < hours.to : hour >= hours.from || hour < hours.to;
  if (!inHours) return false;
  // A span past midnight belongs to the day it began: 22-06 on Fri covers Sat 03:00.
  const startDay = hours.from > hours.to && hour < hours.to ? (day + 6) % 7 : day;
  return hours.days.includes(startDay);
}

/** Why `now` is off hours for an agent taught `taught` (hours of the week); undefined: it is not. */
export function offHoursWhy(now: Date, hours: HoursSettings, taught: readonly number[]): string | undefined {
  if (withinHours(now, hours)) return undefined;
  const how = hourOfWeek(now, hours.tz);
  if (taught.includes(how)) return undefined;
  const { day, hour } = localTime(now, hours.tz);
  return `${DAYS[day]} ${String(hour).padStart(2, '0')}:00 ${hours.tz} is outside its usual hours`;
}
