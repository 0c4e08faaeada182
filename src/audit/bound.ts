// Bounds on what an agent can put into one audit line (the volume of audit an agent can force is
// how fast it can push older evidence out through rotation). Every field whose text comes
// from the request is cut here, in the one place every line passes (serializeEvent), whichever
// writer (file or table) and whichever code path made the event:
//   path           the normalised path (up to ~16 KiB on HTTP/1.1, ~64 KiB as an HTTP/2 :path)
//   method         HTTP/2 lets a :method be any token, as long as the header list allows
//   host           already a valid host name or IP (at most 253), bounded here in case that changes
//   path_override  the paths that X-Original-URL and its kin named (header values)
//   method_override the methods that X-HTTP-Method-Override and its kin named
// A cut path keeps its evidence: `path_sha256` (of the full path, query already stripped) and
// `path_truncated: true`. Another cut field is named in `truncated` (comma-separated). agent, grant
// and rule are names from the config (an agent id is recorded only once its key authenticated);
// message and hint are cut to 500 characters where they are made (proxy/audit-event.ts).

import type { AuditEvent } from './event.ts';
import { sha256hex, stripQuery } from './record-text.ts';

/** Bytes of path kept in a line; past it, the path is cut and its SHA-256 recorded. */
export const MAX_PATH_BYTES = 1024;
const MAX_METHOD_BYTES = 64;
const MAX_HOST_BYTES = 255;
const MAX_OVERRIDE_BYTES = 1024;

/** The other agent-controlled fields, with their bounds in bytes. */
const OTHER_FIELDS = [
  ['method', MAX_METHOD_BYTES],
  ['host', MAX_HOST_BYTES],
  ['method_override', MAX_OVERRIDE_BYTES],
  ['path_override', MAX_OVERRIDE_BYTES],
  // Cut to 200 characters where it is read (proxy/stages/purpose.ts); bounded here in case that changes.
  ['purpose', MAX_OVERRIDE_BYTES],
] as const;

/**
 * Whether `text` may be longer than `max` bytes of UTF-8. Cheap for the common case (a string of at
 * most max/3 UTF-16 units is at most `max` bytes); Buffer.byteLength only in between.
 */
function over(text: string, max: number): boolean {
  if (text.length <= max / 3) return false;
  return text.length > max || Buffer.byteLength(text, 'utf8') > max;
}

/** `text` cut to at most `max` bytes of UTF-8, never inside a character. */
export function cutUtf8(text: string, max: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= max) return text;
  let end = max;
  // bytes[end] is the first byte left out: while it continues a character, that character straddles the cut.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.toString('utf8', 0, end);
}

/**
 * The event itself when every agent-controlled field is within its bound (almost every line: a few
 * length comparisons), else a copy with those fields cut and the cut recorded.
 */
export function boundEvent(event: AuditEvent): AuditEvent {
  // Every line passes here: the usual one (a short path, method and host, no override) returns at once.
  const { path, method } = event;
  if (
    (path === null || path.length <= MAX_PATH_BYTES / 3) &&
    (method === null || method.length <= MAX_METHOD_BYTES / 3) &&
    event.host.length <= MAX_HOST_BYTES / 3 &&
    event.method_override === undefined &&
    event.path_override === undefined &&
    (event.purpose === undefined || event.purpose.length <= MAX_OVERRIDE_BYTES / 3)
  )
    return event;
  const longPath = typeof event.path === 'string' && event.path.length > MAX_PATH_BYTES / 3 && over(event.path, MAX_PATH_BYTES);
  let others = false;
  for (const [field, max] of OTHER_FIELDS) {
    const value = event[field];
    if (typeof value === 'string' && over(value, max)) others = true;
  }
  if (!longPath && !others) return event;
  const out: AuditEvent = { ...event };
  if (longPath) {
    // The hash names the path as it would have been recorded whole: after its query is stripped.
    const full = stripQuery(event.path as string);
    if (over(full, MAX_PATH_BYTES)) {
      out.path = cutUtf8(full, MAX_PATH_BYTES);
      out.path_sha256 = sha256hex(full);
      out.path_truncated = true;
    } else out.path = full;
  }
  if (others) {
    const cut: string[] = [];
    for (const [field, max] of OTHER_FIELDS) {
      const value = event[field];
      if (typeof value === 'string' && over(value, max)) {
        out[field] = cutUtf8(value, max);
        cut.push(field);
      }
    }
    out.truncated = cut.join(',');
  }
  return out;
}
