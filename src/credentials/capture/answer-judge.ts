import type { AnswerBody } from './answer-body.ts';
import { wholePlaceholder } from './placeholder.ts';
import type { CaptureSettings } from './settings.ts';
import { BENIGN_COOKIES, looksLikeCredential, METADATA_MEMBERS, namesToken } from './token-shape.ts';

// Every part of an answer on a login host, judged before any of it reaches the agent. Two rules,
// one per place:
//
// At a watched token endpoint, default deny. Admitted: the members the grant captures (a non-empty
// string each, swapped for a placeholder), the members and headers it names in capture.pass, the
// standard metadata members (token-shape.ts), headers that describe the message (BENIGN_HEADERS),
// and any value that does not look like a credential (a number, a boolean, a short string, prose).
// Everything else (a long run of characters under a name nobody declared, in a header, a cookie,
// a Location, a trailer or a body member at any depth, or a captured member that is not a string)
// refuses the answer: keyway cannot tell a token it does not capture from one it does.
//
// On any other path of a login host (discovery, keys, the login pages), the host is the identity
// provider's, whose answers are mostly public: refused is what names a token (a member, form
// field, query parameter or header whose name says token, holding a credential-shaped value; a
// JWT holding one, as a JARM `response` does) or what keyway cannot read.

/** Why an answer is refused: its fields named (never a value); `unreadable` when keyway could not read it all. */
export interface Refusal {
  readonly unreadable: boolean;
  readonly reason: string;
}

/** How deep an answer's JSON is read (a token answer is flat; Slack's nests one level). Deeper: refused. */
export const MAX_DEPTH = 16;

/**
 * Headers that describe the message, its caching, its security policy or its tracing, not a
 * credential: admitted whatever their value. Matched by name, lower case; `-request-id`-style
 * names by their ending (TRACING).
 */
const BENIGN_HEADERS: ReadonlySet<string> = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'content-language',
  'content-disposition',
  'date',
  'age',
  'expires',
  'last-modified',
  'etag',
  'cache-control',
  'pragma',
  'vary',
  'via',
  'server',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'accept-ranges',
  'alt-svc',
  'retry-after',
  'strict-transport-security',
  'content-security-policy',
  'content-security-policy-report-only',
  'x-content-type-options',
  'x-frame-options',
  'x-xss-protection',
  'referrer-policy',
  'permissions-policy',
  'cross-origin-opener-policy',
  'cross-origin-resource-policy',
  'cross-origin-embedder-policy',
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-allow-headers',
  'access-control-allow-methods',
  'access-control-expose-headers',
  'access-control-max-age',
  'timing-allow-origin',
  'nel',
  'report-to',
  'reporting-endpoints',
  'traceparent',
  'tracestate',
  'cf-ray',
  'cf-cache-status',
  'x-powered-by',
]);

/** Request and trace ids (x-request-id, x-amzn-requestid, x-ms-request-id, x-correlation-id, x-b3-traceid) and rate-limit counters. */
const TRACING = /(?:request-?id|correlation-?id|trace-?id|span-?id|^x-ratelimit-[a-z-]+|^ratelimit(?:-[a-z-]+)?)$/;

function benignHeader(name: string): boolean {
  return BENIGN_HEADERS.has(name) || TRACING.test(name);
}

export interface WatchedJudgement {
  /** Headers whose value the grant captures (capture.headers), present in the answer. */
  readonly capturedHeaders: string[];
}

/**
 * Judges a watched endpoint's head (headers or trailers). Returns the refusal, or the headers to
 * capture. `capturing`: a 2xx answer whose tokens are captured (a header in capture.headers is
 * swapped only then; otherwise it is judged as any other).
 */
export function judgeWatchedHead(headers: Record<string, unknown>, settings: CaptureSettings, capturing: boolean, what = 'header'): Refusal | WatchedJudgement {
  const capturedHeaders: string[] = [];
  for (const [rawName, raw] of Object.entries(headers)) {
    if (raw === undefined) continue;
    const name = rawName.toLowerCase();
    const values = Array.isArray(raw) ? raw.map(String) : [String(raw)];
    if (settings.pass.headers.has(name)) continue;
    if (capturing && settings.headers.includes(name)) {
      capturedHeaders.push(name);
      continue;
    }
    if (name === 'set-cookie') {
      for (const cookie of values) {
        const { cookieName, value } = splitCookie(cookie);
        if (settings.pass.cookies.has(cookieName) || BENIGN_COOKIES.has(cookieName)) continue;
        if (looksLikeCredential(value) && wholePlaceholder(value) === undefined)
          return refused(`a cookie ${quote(cookieName)} that looks like a credential (list it in capture.pass.cookies if it is none)`);
      }
      continue;
    }
    if (name === 'location') {
      for (const value of values) {
        const found = judgeUrl(value, 'watched');
        if (found !== undefined) return found;
      }
      continue;
    }
    if (benignHeader(name)) continue;
    for (const value of values) {
      if (looksLikeCredential(value) && !isPlaceholderCredential(value))
        return refused(
          `a ${what} ${quote(name)} that looks like a credential (capture it with capture.headers, or list it in capture.pass.headers if it is none)`,
        );
    }
  }
  return { capturedHeaders };
}

/**
 * Judges a watched endpoint's body, read: every member at every depth. `captured`: the members
 * the grant captures (they must be strings); undefined when nothing is captured (an error answer).
 */
export function judgeWatchedBody(answer: Exclude<AnswerBody, { format: 'unreadable' }>, settings: CaptureSettings, captured: boolean): Refusal | undefined {
  const fields = new Set(settings.fields);
  const judgeValue = (path: string, name: string, value: unknown, depth: number): Refusal | undefined => {
    if (fields.has(path)) {
      if (typeof value === 'string') return captured || value === '' ? undefined : refused(`${quote(path)} in an answer keyway does not capture`);
      if (value === null) return undefined;
      return refused(`${quote(path)} holding ${kindOf(value)} where a token (a string) is expected`);
    }
    if (settings.pass.fields.has(path) || settings.pass.fields.has(name)) return undefined;
    if (typeof value === 'string') {
      if (METADATA_MEMBERS.has(name)) return undefined;
      if (looksLikeCredential(value) && wholePlaceholder(value) === undefined)
        return refused(`${quote(path)}, which looks like a credential and which the grant neither captures (capture.fields) nor passes (capture.pass.fields)`);
      return undefined;
    }
    if (typeof value === 'object' && value !== null) return walk(value, path, depth + 1);
    return undefined;
  };
  const walk = (value: object, path: string, depth: number): Refusal | undefined => {
    if (depth > MAX_DEPTH) return unreadable(`its JSON nests deeper than ${MAX_DEPTH} levels at ${quote(path)}`);
    for (const [name, member] of Object.entries(value)) {
      const at = path === '' ? name : `${path}.${name}`;
      const found = judgeValue(at, name, member, depth);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  if (answer.format === 'form') {
    for (const [name, value] of answer.value) {
      const found = judgeValue(name, name, value, 0);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  return walk(answer.value, '', 0);
}

/**
 * Judges an answer on another path of a login host (or one a grant only checks): a token by its
 * name, in any member at any depth, a JWT's claims included. `names`: the grant's own field names,
 * which count as token names too.
 */
export function judgeOtherBody(answer: Exclude<AnswerBody, { format: 'unreadable' }>, names: ReadonlySet<string>): Refusal | undefined {
  if (answer.format === 'form') {
    for (const [name, value] of answer.value) {
      const found = judgeNamed(name, name, value, names, 0);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  return walkNamed(answer.value, '', names, 0);
}

function walkNamed(value: object, path: string, names: ReadonlySet<string>, depth: number): Refusal | undefined {
  if (depth > MAX_DEPTH) return unreadable(`its JSON nests deeper than ${MAX_DEPTH} levels at ${quote(path)}`);
  for (const [name, member] of Object.entries(value)) {
    const found = judgeNamed(path === '' ? name : `${path}.${name}`, name, member, names, depth);
    if (found !== undefined) return found;
  }
  return undefined;
}

function judgeNamed(path: string, name: string, value: unknown, names: ReadonlySet<string>, depth: number): Refusal | undefined {
  const tokenName = namesToken(name) || names.has(name) || names.has(path);
  if (typeof value === 'string') {
    if (tokenName && looksLikeCredential(value) && wholePlaceholder(value) === undefined)
      return refused(`${quote(path)} on a path no capture endpoint watches`);
    const claims = jwtClaims(value);
    if (claims !== undefined) return walkNamed(claims, `${path}(JWT)`, names, depth + 1);
    return undefined;
  }
  if (typeof value === 'object' && value !== null) {
    if (tokenName && !Array.isArray(value) && Object.keys(value).length > 0)
      return refused(`${quote(path)} holding an object on a path no capture endpoint watches`);
    return walkNamed(value, path, names, depth + 1);
  }
  return undefined;
}

/** A login host's head on another path: Authorization and token-named headers, and a Location's parameters. */
export function judgeOtherHead(headers: Record<string, unknown>, names: ReadonlySet<string>): Refusal | undefined {
  for (const [rawName, raw] of Object.entries(headers)) {
    if (raw === undefined) continue;
    const name = rawName.toLowerCase();
    const values = Array.isArray(raw) ? raw.map(String) : [String(raw)];
    for (const value of values) {
      if (name === 'location') {
        const found = judgeUrl(value, 'other', names);
        if (found !== undefined) return found;
      } else if ((name === 'authorization' || namesToken(name)) && looksLikeCredential(value) && !isPlaceholderCredential(value)) {
        return refused(`a header ${quote(name)} that looks like a credential, on a path no capture endpoint watches`);
      }
    }
  }
  return undefined;
}

/**
 * A Location (or any URL) read as its client reads it: its query and its fragment as forms,
 * percent-escapes undone; a `response` JWT (JARM) read for its claims. At a watched endpoint any
 * credential-shaped parameter is refused; elsewhere one named as a token.
 */
function judgeUrl(value: string, where: 'watched' | 'other', names: ReadonlySet<string> = new Set()): Refusal | undefined {
  let url: URL;
  try {
    url = new URL(value, 'https://location.invalid/');
  } catch {
    return unreadable('its Location is no URL keyway can read');
  }
  const params = [...url.searchParams, ...new URLSearchParams(url.hash.replace(/^#/, ''))];
  for (const [name, param] of params) {
    if (where === 'watched') {
      if (looksLikeCredential(param) && wholePlaceholder(param) === undefined)
        return refused(`a redirect whose parameter ${quote(name)} looks like a credential`);
      continue;
    }
    const found = judgeNamed(name, name, param, names, 0);
    if (found !== undefined) return refused(`a redirect that carries a token (${found.reason})`);
  }
  if (where === 'watched') {
    for (const segment of url.pathname.split('/')) {
      let decoded = segment;
      try {
        decoded = decodeURIComponent(segment);
      } catch {
        return unreadable('its Location has a path keyway cannot decode');
      }
      if (looksLikeCredential(decoded) && wholePlaceholder(decoded) === undefined) return refused('a redirect whose path looks like it carries a credential');
    }
  }
  return undefined;
}

/** A compact JWS or JWE-less JWT's claims, when `value` is one with a JSON object payload. */
function jwtClaims(value: string): object | undefined {
  const parts = value.split('.');
  if (parts.length !== 3 || value.length < 16 || !parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p) || p === '')) return undefined;
  try {
    const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as unknown;
    if (typeof header !== 'object' || header === null) return undefined;
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    return typeof claims === 'object' && claims !== null ? claims : undefined;
  } catch {
    return undefined;
  }
}

/** `Scheme PLACEHOLDER` or a placeholder alone: what keyway itself hands out, admitted. */
function isPlaceholderCredential(value: string): boolean {
  const last = value.trim().split(/\s+/).pop() ?? '';
  return wholePlaceholder(last) !== undefined && !looksLikeCredential(value.trim().slice(0, value.trim().length - last.length));
}

function splitCookie(cookie: string): { cookieName: string; value: string } {
  const first = cookie.split(';', 1)[0]!;
  const eq = first.indexOf('=');
  const cookieName = (eq === -1 ? '' : first.slice(0, eq)).trim();
  let value = (eq === -1 ? first : first.slice(eq + 1)).trim();
  if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
  try {
    value = decodeURIComponent(value);
  } catch {
    // kept as sent: judged as it is
  }
  return { cookieName, value };
}

function kindOf(value: unknown): string {
  return Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function refused(reason: string): Refusal {
  return { unreadable: false, reason };
}

function unreadable(reason: string): Refusal {
  return { unreadable: true, reason };
}

/** A name for a message: short, quoted, never a value. */
function quote(name: string): string {
  return JSON.stringify(name.length <= 60 ? name : `${name.slice(0, 60)}…`);
}

export function isRefusal(value: Refusal | WatchedJudgement | undefined): value is Refusal {
  return value !== undefined && 'reason' in value;
}
