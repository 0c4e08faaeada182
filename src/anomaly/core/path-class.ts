// A path class: what "a path it never called" compares, so that /repos/acme/api/issues/7 and
// /repos/acme/api/issues/8 are one thing an agent has done, not two. It is the first two segments
// of the path (no query: it is never read), each one that looks like an id collapsed to `{id}`:
//   - all digits (`42`), a UUID, hex of 8 or more characters (commit SHAs, object ids);
//   - 20 or more characters of letters, digits, `-` and `_` with at least one digit (opaque ids, tokens);
//   - any segment longer than 64 characters (`{long}`), so no long value is ever stored.
// A segment is kept as written otherwise (a server may read case), percent-escapes and all.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX = /^[0-9a-f]{8,}$/i;
const DIGITS = /^\d+$/;
const OPAQUE = /^(?=.*\d)[A-Za-z0-9_-]{20,}$/;
const MAX_SEGMENT = 64;
/** How many leading segments make the class. */
export const CLASS_SEGMENTS = 2;

export function collapseSegment(segment: string): string {
  if (segment.length > MAX_SEGMENT) return '{long}';
  if (DIGITS.test(segment) || UUID.test(segment) || HEX.test(segment) || OPAQUE.test(segment)) return '{id}';
  return segment;
}

/** `/repos/acme/api?x=1` -> `/repos/acme`; `/v1/users/123` -> `/v1/users`; `/` -> `/`. */
export function pathClass(path: string): string {
  const q = path.indexOf('?');
  const bare = q === -1 ? path : path.slice(0, q);
  const segments = bare.split('/').filter((s) => s !== '');
  if (segments.length === 0) return '/';
  return `/${segments.slice(0, CLASS_SEGMENTS).map(collapseSegment).join('/')}`;
}
