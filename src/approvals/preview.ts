import { byteOrderMark, utf8Reading } from '../net/media-type.ts';
import { formPreview } from './preview-form.ts';
import { jsonPreview } from './preview-json.ts';
import { rawVisible, redactRaw, strictUtf8 } from './preview-text.ts';

// What an approver sees of a held request's body: enough to decide (which repository, what
// amount, which branch), never a secret the agent put in it, and never something the body does not
// say. A person approves what they see, so a preview shows a body only as what it fully is:
// - a JSON or form body that reads strictly as its declared type (preview-json.ts,
//   preview-form.ts) is shown as its values, redacted, with every unseen character escaped;
// - a JSON or form body that does not (JSON sent as a form, a field with a raw line break, bytes
//   that are not UTF-8, a name given twice) is shown raw, escaped, cut, after a first line that
//   says so and why: never prettified into something it is not;
// - any other type, or a body a server would not read as UTF-8 (another charset, a
//   Content-Encoding, a byte-order mark) is not previewed (null): the approver is told so.

/** The longest preview, in characters (the marker of a cut whole comes on top). */
export const MAX_PREVIEW = 2_000;

/** The first line of a preview that shows the body raw. */
export const RAW_MARKER = '[shown raw, not as';

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
  const kind = mime === 'application/json' || mime.endsWith('+json') ? 'JSON' : mime === 'application/x-www-form-urlencoded' ? 'form' : undefined;
  if (kind === undefined) return null;
  const text = strictUtf8(body);
  if (text === undefined) return raw(body, kind, 'its bytes are not UTF-8');
  const read = kind === 'JSON' ? jsonPreview(text) : formPreview(text);
  return read.ok ? bound(read.preview) : raw(body, kind, read.reason);
}

function raw(body: Buffer, kind: string, reason: string): string {
  return bound(
    `${RAW_MARKER} ${kind === 'JSON' ? 'JSON' : 'form fields'}: ${reason}; escaped, secret-looking values redacted]\n${rawVisible(redactRaw(body))}`,
  );
}

function bound(text: string): string {
  if (text.length <= MAX_PREVIEW) return text;
  const end = /[\uD800-\uDBFF]/.test(text[MAX_PREVIEW - 1]!) ? MAX_PREVIEW - 1 : MAX_PREVIEW;
  return `${text.slice(0, end)}\n… (cut: ${end} of ${text.length} characters shown)`;
}
