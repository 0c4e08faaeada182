import { ProxyError } from '../../../../errors/index.ts';

// The canonical request of Signature Version 4, as AWS's own signer (@smithy/signature-v4) builds
// it: the rules below follow its source line for line, and src/credentials/types/aws_sigv4/canonical.test.ts checks
// every one against it on generated requests. keyway builds it itself because the request path
// signs synchronously, with no copies of the request and no promise per step, and keys its HMACs
// with KeyObjects (on Node 24 an HMAC keyed with bytes costs about 12 µs, with a KeyObject under 2:
// Node probes a raw key for a KeyObject and a CryptoKey by catching what it throws). Through smithy
// a signature cost keyway 45-55 µs of CPU; this way about 7 (docs/perf/README.md, s8).

/** Headers the signer never signs on its own (it still signs one the client signed). */
const UNSIGNABLE = new Set([
  'authorization',
  'cache-control',
  'connection',
  'expect',
  'from',
  'keep-alive',
  'max-forwards',
  'pragma',
  'referer',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'x-amzn-trace-id',
]);

/** RFC 3986 encoding: encodeURIComponent, plus the four characters it leaves that AWS escapes. */
export function escapeUri(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The path as the service reads it: S3 signs it as sent; every other service signs it normalised
 * (empty and `.` segments dropped, `..` resolved) and URI-encoded once more.
 */
export function canonicalPath(path: string, service: string): string {
  if (service === 's3') return path;
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalised = `${path.startsWith('/') ? '/' : ''}${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
  return escapeUri(normalised).replace(/%2F/g, '/');
}

/** A query string as SigV4 reads it: percent-decoded names and values (`+` is a plus, not a space). */
export function parseQuery(text: string): Map<string, string[]> {
  const query = new Map<string, string[]>();
  if (text === '') return query;
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(eq === -1 ? pair : pair.slice(0, eq));
      value = decodeURIComponent(eq === -1 ? '' : pair.slice(eq + 1));
    } catch {
      throw new ProxyError('signature_unsupported', 'the query string has an escape that does not decode; keyway cannot sign it as AWS would read it');
    }
    const values = query.get(name);
    if (values) values.push(value);
    else query.set(name, [value]);
  }
  return query;
}

/** The canonical query: names and values encoded, sorted by name, a repeated name's pairs sorted. */
export function canonicalQuery(query: ReadonlyMap<string, readonly string[]>): string {
  const byName: Array<[string, string]> = [];
  for (const [name, values] of query) {
    if (name.toLowerCase() === 'x-amz-signature') continue;
    const encoded = escapeUri(name);
    const pairs = values.map((value) => `${encoded}=${escapeUri(value)}`);
    byName.push([encoded, pairs.length === 1 ? pairs[0]! : pairs.sort().join('&')]);
  }
  return byName
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([, pairs]) => pairs)
    .join('&');
}

/**
 * The headers signed, name to canonical value (trimmed, runs of white space made one space), in
 * sorted order. `signable` names headers to sign even where the signer would not on its own.
 */
export function canonicalHeaders(headers: Readonly<Record<string, string>>, signable: ReadonlySet<string> | undefined): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if ((UNSIGNABLE.has(lower) || lower.startsWith('proxy-') || lower.startsWith('sec-')) && !signable?.has(lower)) continue;
    out.push([lower, value.trim().replace(/\s+/g, ' ')]);
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

export interface CanonicalRequest {
  /** The canonical request, the string whose SHA-256 the string to sign names. */
  text: string;
  /** SignedHeaders: the names, `;`-joined. */
  signedHeaders: string;
}

export function canonicalRequest(
  method: string,
  path: string,
  query: string,
  headers: ReadonlyArray<readonly [string, string]>,
  payloadHash: string,
): CanonicalRequest {
  let lines = '';
  let names = '';
  for (const [name, value] of headers) {
    lines += `${name}:${value}\n`;
    names += names === '' ? name : `;${name}`;
  }
  return { text: `${method}\n${path}\n${query}\n${lines}\n${names}\n${payloadHash}`, signedHeaders: names };
}
