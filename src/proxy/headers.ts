import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

// Hop-by-hop headers belong to one connection, never forwarded (RFC 9110 7.6.1). `expect` is
// here too: Node already answered `100 Continue` to the client, and undici refuses the header.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'http2-settings',
]);

const COLON = 0x3a;
const KEYWAY_PREFIX = 'x-keyway-';

/** keyway's own request headers, consumed here and never sent upstream. */
export const GRANT_HEADER = 'x-keyway-grant';
export const PURPOSE_HEADER = 'x-keyway-purpose';

/**
 * Copies request headers for the upstream, without hop-by-hop, Proxy-* or keyway's own, nor an
 * HTTP/2 request's pseudo-headers (`:authority` and the rest: undici writes its own).
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const named = connectionTokens(headers.connection);
  // for…in, not Object.entries: no array per header on every request (both copies run on each one).
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || name === GRANT_HEADER || name === PURPOSE_HEADER || named?.has(name) || name.charCodeAt(0) === COLON)
      continue;
    out[name] = value;
  }
  return out;
}

/**
 * On a request keyway injects a credential into, Range and If-Range are dropped unless the grant
 * says allow_range: an upstream that echoes the secret (a debug endpoint, an error page) could
 * otherwise hand it out in slices, each too short for the leak guard to recognise. Without them
 * the upstream sends the whole answer, which the guard scans.
 */
export function dropRange(headers: Record<string, string | string[]>): void {
  // `delete` only when present (rare): deleting turns the object into a slower dictionary.
  if (headers.range !== undefined) delete headers.range;
  if (headers['if-range'] !== undefined) delete headers['if-range'];
}

/**
 * Copies response headers (or trailers) for the client, without hop-by-hop ones, HTTP/2
 * pseudo-headers, or keyway's own (X-Keyway-Error, -Reason, -Hint): only keyway writes those, so an
 * upstream cannot pass off a refusal or a command to run as keyway's.
 */
export function clientResponseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const named = connectionTokens(headers.connection);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || named?.has(name) || name.charCodeAt(0) === COLON || name.startsWith(KEYWAY_PREFIX)) continue;
    out[name] = value;
  }
  return out;
}

function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  if (!text.includes(',') && (text === 'keep-alive' || text === 'close' || text === 'Keep-Alive')) return undefined;
  return new Set(
    text
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
}

/** Node keeps the first of two `Host` headers; two are an attack on whoever reads the other. */
export function countHeader(rawHeaders: readonly string[], lowerName: string): number {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === lowerName) n++;
  return n;
}
