import { cutText, quoted, REDACTED, SECRET_NAME, SECRET_VALUE, strictUtf8 } from './preview-text.ts';

// A form body (application/x-www-form-urlencoded) as an approver sees it: one field a line,
// `name: "value"`, the value decoded and quoted with every unseen character escaped, so a field
// `note=hello%0Aadmin%3Dtrue` shows as `note: "hello\nadmin=true"`, never as two fields.
//
// What it reads (default deny): fields joined by `&`, each `name=value` with exactly one `=`, names
// and values made of letters, digits, `-._~!'()*[]+` and `%XX` escapes only, every escape decoding
// to UTF-8. Anything else (a `;` some servers split on, a bare `=` inside a value, an empty field, a
// field with no `=`, a raw space or line break, JSON sent as a form, bytes that are not UTF-8) is
// read differently by different servers, so the body is not shown as fields at all: the caller
// shows it raw, marked.

/** Fields shown, at most. */
const MAX_FIELDS = 40;

const PART = /^(?:[A-Za-z0-9\-._~!'()*[\]+]|%[0-9A-Fa-f]{2})*$/;
// A name shown without quotes: nothing in it a reader could take for punctuation or mistake.
const PLAIN_NAME = /^[A-Za-z0-9_.\-[\]]+$/;

export type FormReading = { ok: true; preview: string } | { ok: false; reason: string };

export function formPreview(text: string): FormReading {
  const fields = text.split('&');
  const shown: string[] = [];
  for (const [index, field] of fields.entries()) {
    const equals = field.indexOf('=');
    if (field === '') return { ok: false, reason: `field ${index + 1} is empty` };
    if (equals === -1) return { ok: false, reason: `field ${index + 1} has no equals sign` };
    const rawName = field.slice(0, equals);
    const rawValue = field.slice(equals + 1);
    if (!PART.test(rawName) || !PART.test(rawValue)) {
      return { ok: false, reason: `field ${index + 1} holds characters a form does not carry unescaped` };
    }
    const name = decode(rawName);
    const value = decode(rawValue);
    if (name === undefined || value === undefined) return { ok: false, reason: `field ${index + 1} decodes to bytes that are not UTF-8` };
    if (shown.length < MAX_FIELDS) shown.push(`${shownName(name)}: ${shownValue(name, value)}`);
  }
  if (fields.length > MAX_FIELDS) shown.push(`… (${fields.length - MAX_FIELDS} more fields not shown)`);
  return { ok: true, preview: shown.join('\n') };
}

/** `+` is a space, `%XX` a byte; the bytes must be UTF-8. */
function decode(part: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < part.length; i++) {
    const c = part[i]!;
    if (c === '%') {
      bytes.push(Number.parseInt(part.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(c === '+' ? 0x20 : c.charCodeAt(0));
  }
  return strictUtf8(Uint8Array.from(bytes));
}

function shownName(name: string): string {
  if (PLAIN_NAME.test(name)) return name;
  const { text, cut } = cutText(name);
  return `${quoted(text)}${cut ? ` … (name cut: ${name.length} characters)` : ''}`;
}

function shownValue(name: string, value: string): string {
  if (SECRET_NAME.test(name) || SECRET_VALUE.test(value.trim())) return REDACTED;
  const { text, cut } = cutText(value);
  return `${quoted(text)}${cut ? ` … (cut: ${value.length} characters)` : ''}`;
}
