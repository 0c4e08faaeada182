// A path class: what "a path it never called" compares, so that /repos/acme/api/issues/7 and
// /repos/acme/api/issues/8 are one thing an agent has done, not two. It is the first two segments
// of the path (no query: it is never read). The class goes to the audit line's signal, a SIEM,
// Slack, approvals.notify and the store, so it must never carry a value: an allow-list, not a
// guess at what an id looks like (a short token, one with `:` `.` `+` `=`, or one without a digit,
// such as Telegram's `123456:AAE…`, looks like no id and was kept verbatim). A segment is kept only
// if it is a plain lowercase word (WORD: a letter, then up to 31 of a-z 0-9 _ . -) with no run of
// 4 or more digits (`v1`, `oauth2`, `repos`, `acme-api` are kept); anything else, mixed or upper
// case, percent-escapes, ids, dates and tokens included, becomes `{id}`. Lowercase only: a word
// with capitals is as likely a base64 value as a name, and a class collapsed too far only makes
// new_host fire less finely, never carries a value.

const WORD = /^[a-z][a-z0-9_.-]{0,31}$/;
const DIGIT_RUN = /\d{4}/;
/** How many leading segments make the class. */
export const CLASS_SEGMENTS = 2;

export function collapseSegment(segment: string): string {
  return WORD.test(segment) && !DIGIT_RUN.test(segment) ? segment : '{id}';
}

/** `/repos/acme/api?x=1` -> `/repos/acme`; `/v1/users/123` -> `/v1/users`; `/` -> `/`. */
export function pathClass(path: string): string {
  const q = path.indexOf('?');
  const bare = q === -1 ? path : path.slice(0, q);
  const segments = bare.split('/').filter((s) => s !== '');
  if (segments.length === 0) return '/';
  return `/${segments.slice(0, CLASS_SEGMENTS).map(collapseSegment).join('/')}`;
}
