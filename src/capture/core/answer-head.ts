import { judgeNamed, quote, type Refusal, refused, unreadable } from './answer-judge.ts';
import { wholePlaceholder } from './placeholder.ts';
import type { CaptureSettings } from './settings.ts';
import { BENIGN_COOKIES, looksLikeCredential } from './token-shape.ts';

// The head (and the trailers) of every answer on a login host, judged before any of it reaches
// the agent: default deny, on the watched token endpoints and on every other path alike. A header
// is admitted when
// - the grant says so (capture.pass.headers), or captures it (capture.headers, at a watched
//   endpoint's 2xx answer: swapped for a placeholder);
// - it describes the message, its caching, its security policy or its tracing (BENIGN_HEADERS,
//   TRACING), whatever its value;
// - or its value, read as its client reads it, holds nothing that looks like a credential (a run of
//   16 characters without whitespace: token-shape.ts) and no placeholder-free token.
// Read as the client reads them: Set-Cookie cookie by cookie (a cookie the grant passes or one of
// BENIGN_COOKIES admitted; any other credential-shaped value refused, whatever the cookie's name);
// a challenge (WWW-Authenticate, Proxy-Authenticate, Authentication-Info) parameter by parameter
// (CHALLENGE_PARAMS admitted, a URL among them judged as a redirect is; any other credential-shaped
// parameter or token68 refused); Location, Content-Location and Link's URLs decoded, query and
// fragment (at a watched endpoint any credential-shaped parameter is refused, elsewhere one named
// as a token or a JWT carrying one, as a JARM `response`). Anything else credential-shaped refuses
// the answer: the error names the header, never its value, and says to list it in capture.pass.

/**
 * Headers that describe the message, its caching, its security policy or its tracing, not a
 * credential: admitted whatever their value. Matched by name, lower case; `-request-id`-style
 * names by their ending (TRACING). A server's nonce (DPoP-Nonce, ACME's Replay-Nonce) is one the
 * client must send back as it came, and proves nothing alone.
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
  'dpop-nonce',
  'replay-nonce',
]);

/** Request and trace ids (x-request-id, x-amzn-requestid, x-ms-request-id, x-correlation-id, x-b3-traceid) and rate-limit counters. */
const TRACING = /(?:request-?id|correlation-?id|trace-?id|span-?id|^x-ratelimit-[a-z-]+|^ratelimit(?:-[a-z-]+)?)$/;

function benignHeader(name: string): boolean {
  return BENIGN_HEADERS.has(name) || TRACING.test(name);
}

/** Headers that carry a challenge or its answer, read parameter by parameter (RFC 9110 11.6). */
const CHALLENGES: ReadonlySet<string> = new Set(['www-authenticate', 'proxy-authenticate', 'authentication-info', 'proxy-authentication-info']);

/**
 * A challenge's parameters that are no credential of the agent's (RFC 6750 3, RFC 9449 7.1, RFC
 * 9728 5.1, RFC 7616 3.3 and 3.5): admitted whatever their shape. A URL among them is judged as a
 * redirect is. Digest's nonce and opaque are the server's, sent back as they came, and prove
 * nothing without the password.
 */
const CHALLENGE_PARAMS: ReadonlySet<string> = new Set([
  'realm',
  'scope',
  'error',
  'error_description',
  'error_uri',
  'resource_metadata',
  'authorization_uri',
  'as_uri',
  'resource',
  'algs',
  'charset',
  'nonce',
  'opaque',
  'nextnonce',
  'stale',
  'qop',
  'algorithm',
  'domain',
  'userhash',
]);

/** A Link's target attributes (RFC 8288 3.4): they describe the link, admitted whatever their shape. */
const LINK_PARAMS: ReadonlySet<string> = new Set(['rel', 'rev', 'anchor', 'type', 'title', 'title*', 'hreflang', 'media', 'as', 'crossorigin', 'nopush']);

/** Headers whose value is a URL (or, for Link, URLs in angle brackets). */
const URL_HEADERS: ReadonlySet<string> = new Set(['location', 'content-location']);

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
  const found = judgeHead(headers, settings, { watched: true, what, names: new Set() }, (name) => {
    if (!capturing || !settings.headers.includes(name)) return false;
    capturedHeaders.push(name);
    return true;
  });
  return found ?? { capturedHeaders };
}

/**
 * A login host's head on another path (or one a grant only checks): the same default deny, with a
 * redirect's parameters judged by their names (`names`: the grant's own token fields count too).
 */
export function judgeOtherHead(headers: Record<string, unknown>, settings: CaptureSettings, names: ReadonlySet<string>, what = 'header'): Refusal | undefined {
  return judgeHead(headers, settings, { watched: false, what, names }, () => false);
}

interface HeadRule {
  readonly watched: boolean;
  /** 'header' or 'trailer', for messages. */
  readonly what: string;
  readonly names: ReadonlySet<string>;
}

function judgeHead(headers: Record<string, unknown>, settings: CaptureSettings, rule: HeadRule, captured: (name: string) => boolean): Refusal | undefined {
  for (const [rawName, raw] of Object.entries(headers)) {
    if (raw === undefined) continue;
    const name = rawName.toLowerCase();
    if (settings.pass.headers.has(name) || captured(name)) continue;
    const values = Array.isArray(raw) ? raw.map(String) : [String(raw)];
    for (const value of values) {
      const found = judgeHeader(name, value, settings, rule);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

function judgeHeader(name: string, value: string, settings: CaptureSettings, rule: HeadRule): Refusal | undefined {
  const elsewhere = rule.watched ? '' : ', on a path no capture endpoint watches';
  if (name === 'set-cookie') {
    const { cookieName, value: cookie } = splitCookie(value);
    if (settings.pass.cookies.has(cookieName) || BENIGN_COOKIES.has(cookieName)) return undefined;
    if (credential(cookie))
      return refused(`a cookie ${quote(cookieName)} that looks like a credential${elsewhere} (list it in capture.pass.cookies if it is none)`);
    return undefined;
  }
  if (URL_HEADERS.has(name)) return judgeUrl(value, rule);
  if (name === 'link') {
    for (const m of value.matchAll(/<([^>]*)>/g)) {
      const found = judgeUrl(m[1]!, rule);
      if (found !== undefined) return found;
    }
    for (const item of challengeItems(value.replace(/<[^>]*>/g, ' ').replaceAll(';', ','))) {
      if (item.param !== undefined && LINK_PARAMS.has(item.param.toLowerCase())) continue;
      if (credential(item.value)) return refused(`a ${rule.what} "link" whose parameter ${quote(item.param ?? '')} looks like a credential${elsewhere}`);
    }
    return undefined;
  }
  if (CHALLENGES.has(name)) return judgeChallenge(name, value, rule, elsewhere);
  if (benignHeader(name)) return undefined;
  return judgeValue(name, value, rule, elsewhere);
}

function judgeValue(name: string, value: string, rule: HeadRule, elsewhere: string): Refusal | undefined {
  if (!looksLikeCredential(value) || isPlaceholderCredential(value)) return undefined;
  return refused(
    `a ${rule.what} ${quote(name)} that looks like a credential${elsewhere} (${rule.watched ? 'capture it with capture.headers, or ' : ''}list it in capture.pass.headers if it is none)`,
  );
}

/** A challenge, parameter by parameter: the admitted ones (a URL among them judged as a redirect), anything else credential-shaped refused. */
function judgeChallenge(name: string, value: string, rule: HeadRule, elsewhere: string): Refusal | undefined {
  for (const item of challengeItems(value)) {
    if (item.param === undefined) {
      if (credential(item.value)) return refused(`a ${rule.what} ${quote(name)} carrying a credential-shaped token${elsewhere}`);
      continue;
    }
    const param = item.param.toLowerCase();
    if (CHALLENGE_PARAMS.has(param)) {
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(item.value)) {
        const found = judgeUrl(item.value, { ...rule, watched: false });
        if (found !== undefined) return found;
      }
      continue;
    }
    if (credential(item.value)) return refused(`a ${rule.what} ${quote(name)} whose parameter ${quote(param)} looks like a credential${elsewhere}`);
  }
  return undefined;
}

/**
 * The items of a challenge header (RFC 9110 11.6.1), leniently: each auth-param as its name and
 * its value (a quoted string unquoted), and each bare word (a scheme, a token68) as a value alone.
 * What does not parse is a bare word: judged whole.
 */
export function challengeItems(value: string): Array<{ param: string | undefined; value: string }> {
  const items: Array<{ param: string | undefined; value: string }> = [];
  let i = 0;
  const n = value.length;
  const space = (c: string | undefined) => c === ' ' || c === '\t' || c === ',';
  while (i < n) {
    while (i < n && space(value[i])) i++;
    if (i >= n) break;
    let j = i;
    while (j < n && !space(value[j]) && value[j] !== '=' && value[j] !== '"') j++;
    const word = value.slice(i, j);
    let k = j;
    while (k < n && (value[k] === ' ' || value[k] === '\t')) k++;
    if (value[k] !== '=') {
      if (value[j] === '"') {
        // A quoted string where no parameter is: read it as one bare value.
        const { text, end } = quoted(value, j);
        items.push({ param: undefined, value: word + text });
        i = end;
        continue;
      }
      items.push({ param: undefined, value: word });
      i = j;
      continue;
    }
    // `word=`: a parameter, or a token68's padding (`=` runs up to the end or a comma).
    let e = k;
    while (e < n && value[e] === '=') e++;
    let after = e;
    while (after < n && (value[after] === ' ' || value[after] === '\t')) after++;
    if (after >= n || value[after] === ',' || e - k > 1) {
      items.push({ param: undefined, value: word + value.slice(k, e) });
      i = e;
      continue;
    }
    if (value[after] === '"') {
      const { text, end } = quoted(value, after);
      items.push({ param: word, value: text });
      i = end;
      continue;
    }
    let v = after;
    while (v < n && !space(value[v])) v++;
    items.push({ param: word, value: value.slice(after, v) });
    i = v;
  }
  return items;
}

/** A quoted string from `at` (its opening quote): its text unescaped, and where it ends (unterminated: the rest). */
function quoted(value: string, at: number): { text: string; end: number } {
  let text = '';
  let i = at + 1;
  while (i < value.length && value[i] !== '"') {
    if (value[i] === '\\' && i + 1 < value.length) i++;
    text += value[i];
    i++;
  }
  return { text, end: i + 1 };
}

/**
 * A URL (a Location, a Link target) read as its client reads it: its query and its fragment as
 * forms, percent-escapes undone; a `response` JWT (JARM) read for its claims. At a watched
 * endpoint any credential-shaped parameter (or path segment) is refused; elsewhere one named as a
 * token.
 */
function judgeUrl(value: string, rule: HeadRule): Refusal | undefined {
  let url: URL;
  try {
    url = new URL(value, 'https://location.invalid/');
  } catch {
    return unreadable('its Location is no URL keyway can read');
  }
  const params = [...url.searchParams, ...new URLSearchParams(url.hash.replace(/^#/, ''))];
  for (const [name, param] of params) {
    if (rule.watched) {
      if (credential(param)) return refused(`a redirect whose parameter ${quote(name)} looks like a credential`);
      continue;
    }
    const found = judgeNamed(name, name, param, rule.names, 0);
    if (found !== undefined) return refused(`a redirect that carries a token (${found.reason})`);
  }
  if (rule.watched) {
    for (const segment of url.pathname.split('/')) {
      let decoded = segment;
      try {
        decoded = decodeURIComponent(segment);
      } catch {
        return unreadable('its Location has a path keyway cannot decode');
      }
      if (credential(decoded)) return refused('a redirect whose path looks like it carries a credential');
    }
  }
  return undefined;
}

/** Credential-shaped and not a placeholder keyway handed out. */
function credential(value: string): boolean {
  return looksLikeCredential(value) && wholePlaceholder(value) === undefined;
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

export function isRefusal(value: Refusal | WatchedJudgement | undefined): value is Refusal {
  return value !== undefined && 'reason' in value;
}
