// What makes a rule's values well-formed (agents.<id>.rules[]): checked once, by the config schema,
// so every command that loads a config refuses a bad glob or time zone, not only `keyway start`.
// The policy compiles them (policy/glob.ts, policy/time-window.ts) from values already checked here.

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export const HTTP_METHOD = /^[A-Z][A-Z0-9_-]*$/;

// Characters that mean something in other glob dialects but rarely appear in API paths. `@`, `+`,
// `!` and parentheses stay literal: `/users/@me` is a real path.
const UNSUPPORTED_GLOB = /[[\]{}]/;

/** Why a path glob is refused (see policy/glob.ts for what globs mean), or undefined when it is valid. */
export function globSyntaxError(pattern: string): string | undefined {
  if (!pattern.startsWith('/')) return `expected a path starting with /, got "${pattern}"`;
  if (pattern.includes('?') || pattern.includes('#')) return `"${pattern}": a path glob matches the path only, never a query string or fragment`;
  if (UNSUPPORTED_GLOB.test(pattern)) return `"${pattern}": only * (one segment) and ** (any number of segments) are supported`;
  for (const part of pattern.split('/')) {
    if (part === '.' || part === '..') {
      return `"${pattern}": . and .. segments are resolved in request paths before matching; write the path without them`;
    }
    if (part !== '**' && part.includes('**')) return `"${pattern}": ** must be a whole segment, as in /repos/**`;
  }
  return undefined;
}

/** Why `tz` is refused, or undefined for an IANA time zone this platform knows. */
export function timeZoneError(tz: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return undefined;
  } catch {
    return `unknown time zone "${tz}"; expected an IANA name such as Europe/Paris or UTC`;
  }
}

/** Parses `HH:MM-HH:MM` into minutes; returns an error message when invalid. */
export function parseHours(text: string): { start: number; end: number } | string {
  const match = /^(\d\d):(\d\d)-(\d\d):(\d\d)$/.exec(text.trim());
  if (!match) return `expected HH:MM-HH:MM such as 09:00-18:00, got "${text}"`;
  const [sh, sm, eh, em] = match.slice(1).map(Number) as [number, number, number, number];
  if (sh > 23 || sm > 59 || eh > 24 || em > 59 || (eh === 24 && em !== 0)) return `"${text}": hours are 00:00 to 23:59 (24:00 only as an end)`;
  const start = sh * 60 + sm;
  const end = eh * 60 + em;
  if (start === end) return `"${text}" is an empty window; write 00:00-24:00 for the whole day`;
  return { start, end };
}
