import { byteOrderMark, utf8Reading } from '../net/media-type.ts';

// What an approver sees of a held request's body: enough to decide (which repository, what
// amount, which branch), never a secret the agent put in it. JSON and form bodies only; values under
// names that usually hold secrets are replaced, long strings are cut, and the whole is bounded.

/** The longest preview, in characters. */
export const MAX_PREVIEW = 2_000;
/** A string value longer than this is cut. */
const MAX_VALUE = 120;
/** Objects nested deeper than this are shown as `…`. */
const MAX_DEPTH = 6;
/** Members or items shown per object or array. */
const MAX_MEMBERS = 40;

// Names whose values are credentials far more often than not: `password`, `api_key`, `client_secret`,
// `Authorization`, `accessToken`, `cookie`, `private_key`, `signature`, `otp`... (not `author`).
const SECRET_NAME =
  /passw|passphrase|passcode|secret|token|^auth$|authoriz|authenticat|cookie|credential|signature|private|session|(^|[_-])key$|apikey|api_key|^otp$|^pin$|cvv|ssn/i;

// Values that look like credentials whatever their name: well-known token prefixes, JWTs, PEM.
const SECRET_VALUE = /^(gh[pousr]_|github_pat_|xox[abprs]-|sk[-_]|rk_|AKIA|ASIA|AIza|ya29\.|eyJ[A-Za-z0-9_-]{8,}\.)|-----BEGIN /;

const REDACTED = '[redacted]';

/**
 * The preview of a body of this Content-Type, or null when keyway does not preview it: another type,
 * or a body the server would not read as the UTF-8 keyway shows (another charset, a
 * Content-Encoding): an approver must never be shown one message while the server runs another.
 */
export function bodyPreview(body: Buffer, contentType: string | undefined, contentEncoding?: string): string | null {
  if (body.length === 0 || contentEncoding !== undefined) return null;
  const reading = utf8Reading(contentType);
  if (!reading.ok || byteOrderMark(body) !== undefined) return null;
  const mime = reading.mediaType.type;
  if (mime === 'application/json' || mime.endsWith('+json')) return jsonPreview(body);
  if (mime === 'application/x-www-form-urlencoded') return formPreview(body);
  return null;
}

function jsonPreview(body: Buffer): string | null {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  return bound(JSON.stringify(redactValue(value, undefined, 0)));
}

function redactValue(value: unknown, name: string | undefined, depth: number): unknown {
  if (name !== undefined && SECRET_NAME.test(name) && value !== null && typeof value !== 'boolean') return REDACTED;
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '…';
  if (Array.isArray(value)) {
    const shown = value.slice(0, MAX_MEMBERS).map((item) => redactValue(item, undefined, depth + 1));
    if (value.length > MAX_MEMBERS) shown.push(`… ${value.length - MAX_MEMBERS} more`);
    return shown;
  }
  const out: Record<string, unknown> = {};
  const keys = Object.keys(value);
  for (const key of keys.slice(0, MAX_MEMBERS)) out[cut(key)] = redactValue((value as Record<string, unknown>)[key], key, depth + 1);
  if (keys.length > MAX_MEMBERS) out['…'] = `${keys.length - MAX_MEMBERS} more`;
  return out;
}

function redactString(text: string): string {
  if (SECRET_VALUE.test(text.trim())) return REDACTED;
  return cut(text);
}

function cut(text: string): string {
  return text.length <= MAX_VALUE ? text : `${text.slice(0, MAX_VALUE)}… (${text.length} characters)`;
}

function formPreview(body: Buffer): string {
  const params = new URLSearchParams(body.toString('utf8'));
  const shown: string[] = [];
  let count = 0;
  for (const [key, value] of params) {
    if (count++ >= MAX_MEMBERS) {
      shown.push('…');
      break;
    }
    shown.push(`${cut(key)}=${SECRET_NAME.test(key) ? REDACTED : redactString(value)}`);
  }
  return bound(shown.join('\n'));
}

function bound(text: string): string {
  return text.length <= MAX_PREVIEW ? text : `${text.slice(0, MAX_PREVIEW)}…`;
}
