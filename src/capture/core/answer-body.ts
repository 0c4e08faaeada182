import { byteOrderMark, utf8Reading } from '../../net/media-type.ts';

// A token endpoint's answer as its client reads it: a JSON object (RFC 6749 5.1) or a form
// (GitHub's default), in UTF-8. Read once here, for the capture (its fields swapped, then written
// back) and for the fail-closed check (does it carry a token at all). What keyway cannot read as
// the client would is said so, never guessed at.

export type AnswerBody =
  | { readonly format: 'json'; readonly value: Record<string, unknown> }
  | { readonly format: 'form'; readonly value: URLSearchParams }
  | { readonly format: 'unreadable'; readonly reason: string };

/** The media types a token answer comes as (none at all included): the answers a capture host has read. */
export function mayBeTokenAnswer(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || type.endsWith('+json') || type === 'application/x-www-form-urlencoded' || type === 'text/plain' || type === '';
}

/** Reads an answer of one of mayBeTokenAnswer's types. */
export function readAnswer(bytes: Buffer, contentType: string | undefined): AnswerBody {
  const bom = byteOrderMark(bytes);
  if (bom !== undefined) return { format: 'unreadable', reason: `it starts with a ${bom} byte-order mark` };
  let type = '';
  if (contentType !== undefined) {
    const reading = utf8Reading(contentType);
    if (!reading.ok) return { format: 'unreadable', reason: reading.reason };
    type = reading.mediaType.type;
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { format: 'unreadable', reason: 'it is not valid UTF-8' };
  }
  const json = type === 'application/json' || type.endsWith('+json');
  const form = type === 'application/x-www-form-urlencoded';
  // text/plain or no type: what it looks like, as lenient clients read it.
  if (json || (!form && /^\s*\{/.test(text))) {
    try {
      const value = JSON.parse(text) as unknown;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return { format: 'unreadable', reason: 'its JSON is not an object' };
      if (hasDuplicateKeys(text)) return { format: 'unreadable', reason: 'its JSON names a member twice (clients disagree on which one counts)' };
      return { format: 'json', value: value as Record<string, unknown> };
    } catch {
      return { format: 'unreadable', reason: 'it is not valid JSON' };
    }
  }
  if (form || text.includes('=')) {
    const params = new URLSearchParams(text);
    const names = [...params.keys()];
    if (new Set(names).size !== names.length) return { format: 'unreadable', reason: 'it names a field twice (clients disagree on which one counts)' };
    return { format: 'form', value: params };
  }
  return { format: 'unreadable', reason: 'it is neither JSON nor a form' };
}

/**
 * A JSON text (already parsed once, so well formed) with an object that names a member twice:
 * JSON.parse keeps the last, other readers the first. Walks the text, tracking each open object's
 * member names; strings are skipped whole, so a brace inside one is not structure.
 */
function hasDuplicateKeys(text: string): boolean {
  const frames: Array<Set<string> | null> = []; // null: an array
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const names = frames[frames.length - 1];
      if (expectName && names) {
        const name = JSON.parse(text.slice(i, j + 1)) as string;
        if (names.has(name)) return true;
        names.add(name);
      }
      expectName = false;
      i = j;
    } else if (c === '{') {
      frames.push(new Set());
      expectName = true;
    } else if (c === '[') {
      frames.push(null);
      expectName = false;
    } else if (c === '}' || c === ']') frames.pop();
    else if (c === ',') expectName = frames[frames.length - 1] != null;
  }
  return false;
}
