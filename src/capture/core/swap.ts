import { randomBytes } from 'node:crypto';
import type { AnswerBody } from './answer-body.ts';
import { jwtExpiry, makePlaceholder, wholePlaceholder } from './placeholder.ts';
import type { CapturedToken } from './captured.ts';

// The swap itself: an answer of a watched token endpoint, read (answer-body.ts), has each captured
// field's value replaced by a placeholder of its shape, and the real values become records.

/** Who and what a capture is for. */
export interface CaptureFor {
  readonly grant: string;
  readonly agent: string;
  /** The endpoint's host and path, as listings name it. */
  readonly endpoint: string;
  readonly fields: readonly string[];
  /** A refresh: the refresh token sent (its placeholder key and record), whose login the new tokens join. */
  readonly refreshing?: { readonly key: string; readonly record: CapturedToken } | undefined;
}

export interface Swapped {
  readonly body: Buffer;
  /** The records to save, by placeholder key. */
  readonly records: Array<readonly [string, CapturedToken]>;
  /** The fields swapped, in the grant's order (the audit line's `captured`). */
  readonly captured: string[];
  /** The refresh token sent came back unchanged (the server does not rotate): its placeholder was kept. */
  readonly sameRefreshToken: boolean;
  /** Each captured header's value as the agent gets it (the placeholder in place of the token). */
  readonly headers: ReadonlyMap<string, string>;
}

/** A captured header's token: an Authorization answer's credential after its scheme, else the whole value. */
function headerToken(name: string, value: string): { before: string; token: string } {
  const scheme = name === 'authorization' ? /^([A-Za-z0-9!#$%&'*+.^_`|~-]+\s+)(\S+)\s*$/.exec(value) : null;
  return scheme === null ? { before: '', token: value.trim() } : { before: scheme[1]!, token: scheme[2]! };
}

/** How deep an answer is searched for token fields (a token answer is flat; Slack's nests one level). */
const MAX_DEPTH = 8;

/**
 * Where the answer carries a token: the path (a.b, a.0.b in arrays) of every non-empty string member,
 * at any depth, named as one of `tokenFields` is named (its last part), or at one of their paths. What
 * makes an answer a token answer, and what a capture must account for, nested ones included.
 */
export function tokenFieldsIn(answer: AnswerBody, tokenFields: readonly string[]): string[] {
  const names = new Set(tokenFields.map((f) => f.split('.').pop()!));
  const paths = new Set(tokenFields);
  const found: string[] = [];
  if (answer.format === 'form') {
    for (const [name, value] of answer.value) if (value !== '' && (names.has(name) || paths.has(name))) found.push(name);
    return found;
  }
  if (answer.format !== 'json') return found;
  const walk = (value: unknown, path: string, depth: number): void => {
    if (depth > MAX_DEPTH || typeof value !== 'object' || value === null) return;
    for (const [name, member] of Object.entries(value)) {
      const at = path === '' ? name : `${path}.${name}`;
      if (typeof member === 'string') {
        if (member !== '' && (names.has(name) || paths.has(at))) found.push(at);
      } else walk(member, at, depth + 1);
    }
  };
  walk(answer.value, '', 0);
  return found;
}

/**
 * Swaps the captured fields of a readable answer; `now` dates the records. `raw` is the answer's
 * text: the real values are replaced in it where they are written (a JSON string, a form value),
 * every other byte left as it came (a number past 2^53 stays exact), and the result read again to
 * make sure no token field is left holding anything but a placeholder.
 */
export function swapAnswer(
  answer: Exclude<AnswerBody, { format: 'unreadable' }> | undefined,
  raw: string,
  target: CaptureFor,
  now: number,
  headerValues: ReadonlyArray<readonly [name: string, value: string]> = [],
): Swapped {
  const records: Array<readonly [string, CapturedToken]> = [];
  const captured: string[] = [];
  const login = target.refreshing?.record.login ?? randomBytes(6).toString('hex');
  const expiresIn = answer === undefined ? undefined : seconds(fieldOf(answer, 'expires_in'));
  const refreshExpiresIn = answer === undefined ? undefined : seconds(fieldOf(answer, 'refresh_token_expires_in'));
  let sameRefreshToken = false;
  const swaps = new Map<string, string>();
  const headers = new Map<string, string>();
  const found: Array<readonly [field: string, value: string]> = [];
  for (const field of answer === undefined ? [] : target.fields) {
    const value = fieldOf(answer!, field);
    if (typeof value === 'string' && value !== '') found.push([field, value]);
  }
  for (const [name, value] of headerValues) {
    const { token } = headerToken(name, value);
    if (token !== '') found.push([name, token]);
  }
  for (const [field, value] of found) {
    if (swaps.has(value)) continue;
    captured.push(field);
    const sent = target.refreshing;
    if (field === 'refresh_token' && sent !== undefined && sent.record.value === value) {
      // Not rotated: the agent keeps the placeholder it has, and the record stays as it is.
      swaps.set(value, sent.record.prefix + sent.key);
      sameRefreshToken = true;
      continue;
    }
    const placeholder = makePlaceholder(value);
    swaps.set(value, placeholder.text);
    const expiry =
      jwtExpiry(value) ??
      (field === 'access_token' && expiresIn !== undefined ? now + expiresIn * 1000 : undefined) ??
      (field === 'refresh_token' && refreshExpiresIn !== undefined ? now + refreshExpiresIn * 1000 : undefined);
    records.push([
      placeholder.key,
      {
        grant: target.grant,
        agent: target.agent,
        field,
        value,
        prefix: placeholder.prefix,
        login,
        endpoint: target.endpoint,
        captured_at: new Date(now).toISOString(),
        expires_at: expiry === undefined ? undefined : new Date(expiry).toISOString(),
      },
    ]);
  }
  for (const [name, value] of headerValues) {
    const { before, token } = headerToken(name, value);
    const placeholder = swaps.get(token);
    if (placeholder !== undefined) headers.set(name, `${before}${placeholder}`);
  }
  const body = answer === undefined ? raw : answer.format === 'json' ? swapJsonText(raw, swaps) : swapFormText(raw, swaps);
  return { body: Buffer.from(body, 'utf8'), records, captured, sameRefreshToken, headers };
}

/** Each real value, written as a JSON string anywhere in the text, replaced by its placeholder. */
function swapJsonText(raw: string, swaps: ReadonlyMap<string, string>): string {
  let out = raw;
  for (const [real, placeholder] of swaps) out = out.split(JSON.stringify(real).slice(1, -1)).join(JSON.stringify(placeholder).slice(1, -1));
  return out;
}

/** Each pair whose value is a real value gets its placeholder; the other pairs as they came. */
function swapFormText(raw: string, swaps: ReadonlyMap<string, string>): string {
  return raw
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq === -1) return pair;
      let value: string;
      try {
        value = decodeURIComponent(pair.slice(eq + 1).replace(/\+/g, ' '));
      } catch {
        return pair;
      }
      const placeholder = swaps.get(value);
      return placeholder === undefined ? pair : `${pair.slice(0, eq)}=${encodeURIComponent(placeholder)}`;
    })
    .join('&');
}

/** The token fields of an answer that hold anything but one placeholder (after a swap: none may). */
export function unswappedTokenFields(answer: AnswerBody, tokenFields: readonly string[]): string[] {
  return tokenFieldsIn(answer, tokenFields).filter((path) => {
    const value = valueAt(answer, path);
    return typeof value !== 'string' || wholePlaceholder(value) === undefined;
  });
}

/** The value at a path tokenFieldsIn gave (array indices included). */
function valueAt(answer: AnswerBody, path: string): unknown {
  if (answer.format === 'form') return answer.value.get(path) ?? undefined;
  if (answer.format !== 'json') return undefined;
  // A path's parts may hold dots themselves (a literal "a.b" member): walk by trying the longest name first.
  const walk = (at: unknown, rest: string): unknown => {
    if (rest === '') return at;
    if (typeof at !== 'object' || at === null) return undefined;
    const parts = rest.split('.');
    for (let n = parts.length; n >= 1; n--) {
      const name = parts.slice(0, n).join('.');
      if (Object.hasOwn(at, name)) {
        const found = walk((at as Record<string, unknown>)[name], parts.slice(n).join('.'));
        if (found !== undefined) return found;
      }
    }
    return undefined;
  };
  return walk(answer.value, path);
}

/** A field's value: a form's, or a JSON member's (a.b: a member of a nested object). */
function fieldOf(answer: AnswerBody, field: string): unknown {
  if (answer.format === 'form') return answer.value.get(field) ?? undefined;
  if (answer.format !== 'json') return undefined;
  let at: unknown = answer.value;
  for (const name of field.split('.')) {
    if (typeof at !== 'object' || at === null || Array.isArray(at) || !Object.hasOwn(at, name)) return undefined;
    at = (at as Record<string, unknown>)[name];
  }
  return at;
}

/** expires_in as a number of seconds (a number, or a numeric string as some servers send it). */
function seconds(value: unknown): number | undefined {
  const n = typeof value === 'string' && /^\d{1,10}$/.test(value) ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : undefined;
}
