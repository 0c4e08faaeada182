import { createHash, randomBytes } from 'node:crypto';

// Placeholders for captured tokens: what the agent holds in place of each real value. Each one is
// unguessable (random), recognisable (a mark keyway looks for in requests) and shaped like what it
// stands for, so the client that stores it keeps working:
//   - an opaque token becomes `kwcap_` and random letters and digits, as long as the real one (at
//     least 32 characters), after the real one's vendor prefix when it has a known one (`gho_`,
//     `xoxp-`: some clients check it). Only a known prefix is kept: the start of a random token is
//     part of its secret;
//   - a JWT (a signed ID or access token whose claims clients read: exp to schedule a refresh, an ID
//     token's iss, aud and nonce) keeps its claims; its header gains `kwc` (a nonce, first, so every
//     placeholder JWT starts with the same characters) and its signature is random bytes. Nobody can
//     verify it, and nobody needs to: the client got it from its token endpoint over TLS.

const OPAQUE_MARK = 'kwcap_';
/** base64url of `{"kwc"`: how every placeholder JWT begins. */
const JWT_MARK = 'eyJrd2Mi';
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const MIN_LENGTH = 32;
const MAX_LENGTH = 4096;

/** Vendor prefixes kept on an opaque placeholder (GitHub, GitLab, Slack, OpenAI, Anthropic, Hugging Face, npm). */
const KNOWN_PREFIX = /^(?:github_pat_|gh[opusr]_|glpat-|xox[a-z]-|sk-(?:ant-|proj-)?|hf_|npm_)/;

/** A character of a placeholder's random part (letters and digits), or of base64url (JWT parts). */
const isAlnum = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isBase64url = (c: number): boolean => isAlnum(c) || c === 45 || c === 95;
/** An opaque key's random part is at least this long (keyway makes 26 or more). */
const MIN_RANDOM = 20;

function randomText(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  // 256 = 4 * 62 + 8: the bias of a modulo is under 4 %, and 6 bits of each character are random.
  for (let i = 0; i < length; i++) out += ALPHABET[bytes[i]! % ALPHABET.length];
  return out;
}

/** The JWT's three parts and its header, when `value` is a compact JWS with a JSON header naming alg. */
function jwtParts(value: string): { header: Record<string, unknown>; payload: string; signatureBytes: number } | undefined {
  const parts = value.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p)) || parts[0] === '' || parts[2] === '') return undefined;
  try {
    const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as unknown;
    if (typeof header !== 'object' || header === null || Array.isArray(header) || typeof (header as { alg?: unknown }).alg !== 'string') return undefined;
    JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    return { header: header as Record<string, unknown>, payload: parts[1]!, signatureBytes: Buffer.from(parts[2]!, 'base64url').length };
  } catch {
    return undefined;
  }
}

export interface Placeholder {
  /** What the agent gets. */
  readonly text: string;
  /** What identifies it (findPlaceholders finds this); the text is `prefix + key`. */
  readonly key: string;
  readonly prefix: string;
}

/** A new placeholder for `real`, of the same shape. */
export function makePlaceholder(real: string): Placeholder {
  const jwt = jwtParts(real);
  if (jwt !== undefined) {
    const { kwc: _dropped, ...rest } = jwt.header;
    const header = Buffer.from(JSON.stringify({ kwc: randomBytes(12).toString('base64url'), ...rest })).toString('base64url');
    const text = `${header}.${jwt.payload}.${randomBytes(Math.max(32, jwt.signatureBytes)).toString('base64url')}`;
    return { text, key: text, prefix: '' };
  }
  const prefix = KNOWN_PREFIX.exec(real)?.[0] ?? '';
  const length = Math.min(MAX_LENGTH, Math.max(MIN_LENGTH, real.length));
  const key = `${OPAQUE_MARK}${randomText(Math.max(26, length - prefix.length - OPAQUE_MARK.length))}`;
  return { text: prefix + key, key, prefix };
}

/**
 * Every placeholder key in `text`, in order: an opaque one's part from the mark on (its prefix is not
 * part of its key), or a placeholder JWT whole. One pass, no backtracking: each mark found with
 * indexOf, the characters after it read once, and the next search starts past them (a regular
 * expression here backtracked over every mark in a run of them: seconds on a body full of marks).
 */
export function findPlaceholders(text: string): string[] {
  const found: string[] = [];
  let at = 0;
  while (at < text.length) {
    const opaque = text.indexOf(OPAQUE_MARK, at);
    const jwt = text.indexOf(JWT_MARK, at);
    if (opaque === -1 && jwt === -1) break;
    const start = jwt === -1 || (opaque !== -1 && opaque < jwt) ? opaque : jwt;
    if (start === opaque) {
      let end = start + OPAQUE_MARK.length;
      while (end < text.length && isAlnum(text.charCodeAt(end))) end++;
      if (end - start - OPAQUE_MARK.length >= MIN_RANDOM) found.push(text.slice(start, end));
      at = Math.max(end, start + 1);
      continue;
    }
    // header . payload . signature, each base64url; the signature not empty.
    let end = start;
    let dots = 0;
    let partStart = start;
    for (;;) {
      while (end < text.length && isBase64url(text.charCodeAt(end))) end++;
      if (dots < 2 && text.charCodeAt(end) === 46) {
        dots++;
        end++;
        partStart = end;
        continue;
      }
      break;
    }
    if (dots === 2 && end > partStart) found.push(text.slice(start, end));
    at = Math.max(end, start + 1);
  }
  return found;
}

/** Whether `text` is one placeholder, whole (with its prefix, if any): its key, else undefined. */
export function wholePlaceholder(text: string): string | undefined {
  const found = findPlaceholders(text);
  if (found.length !== 1) return undefined;
  const key = found[0]!;
  const prefix = text.slice(0, text.length - key.length);
  return text.endsWith(key) && (prefix === '' || KNOWN_PREFIX.exec(prefix)?.[0] === prefix) ? key : undefined;
}

/** Quick test before a search: whether `text` could hold a placeholder at all. */
export function mayHoldPlaceholder(text: string): boolean {
  return text.includes(OPAQUE_MARK) || text.includes(JWT_MARK);
}

/** The store record's id for a placeholder key: its hash, so the store's ids say nothing of it. */
export function capturedRecordId(key: string): string {
  return `${CAPTURED_PREFIX}${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

export const CAPTURED_PREFIX = 'captured:';

/** A JWT's exp (epoch ms), read without checking it: when the real token stops working. */
export function jwtExpiry(value: string): number | undefined {
  const parts = value.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
