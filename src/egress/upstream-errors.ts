import { resolve } from 'node:path';
import { ProxyError } from '../errors/index.ts';

// Wraps what undici and Node raise when talking to a real host into keyway's codes. The message
// names the kind of failure only: a foreign message may quote a URL with a query string.

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const CONNECT_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'cannot resolve the host',
  EAI_AGAIN: 'cannot resolve the host',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_SOCKET: 'the connection closed unexpectedly',
  UND_ERR_CLOSED: 'the connection closed unexpectedly',
  EPIPE: 'the connection closed unexpectedly',
};

/**
 * OpenSSL's verify results for a chain that ends at no trusted root: an internal CA, a self-signed
 * certificate, a missing intermediate. proxy.upstream_ca is the fix for these (not for an expired
 * certificate or a wrong name). UNABLE_TO_VERIFY_LEAF_SIGNATURE names neither CERT nor TLS.
 */
const UNTRUSTED_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_UNTRUSTED',
  'INVALID_CA',
]);

/**
 * Whether the config's proxy.upstream_ca (after a reload) differs from the CAs the upstream was
 * built with at start: a reload does not apply it, and the hint must say so, not "add the CA".
 */
export function upstreamCaPendingRestart(loaded: readonly string[], configured: readonly string[], home: string): boolean {
  const now = configured.map((file) => resolve(home, file));
  return now.length !== loaded.length || now.some((file) => !loaded.includes(file));
}

/**
 * `clientCertificate`: the request went out on a connection presenting the grant's client
 * certificate (mTLS), so a TLS alert from the upstream is its verdict on that certificate.
 */
export function upstreamError(err: unknown, authority: string, grant?: string, clientCertificate = false, caPendingRestart = false): ProxyError {
  if (err instanceof ProxyError) return err;
  const refused = findProxyError(err);
  if (refused) return refused;
  const alert = clientCertificate ? (findAlert(err) ?? closedUnanswered(err)) : undefined;
  if (alert !== undefined) {
    return new ProxyError('upstream_unreachable', `${authority} refused the client certificate of grant "${grant}" (${alert})`, {
      grant,
      cause: err,
      hint: `check the certificate is one ${authority} accepts (its CA, its validity); set another with keyway secrets set ${grant} --client-certificate FILE --client-key FILE`,
    });
  }
  const code = findCode(err);
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    return new ProxyError('upstream_timeout', `${authority} did not answer in time`, { grant, cause: err });
  }
  if (code !== undefined && CONNECT_CODES[code]) {
    return new ProxyError('upstream_unreachable', `${authority}: ${CONNECT_CODES[code]}`, { grant, cause: err });
  }
  if (code !== undefined && UNTRUSTED_CODES.has(code)) {
    return new ProxyError('upstream_unreachable', `${authority}: TLS verification failed: its certificate is signed by a CA keyway does not trust (${code})`, {
      grant,
      cause: err,
      hint: caPendingRestart
        ? 'proxy.upstream_ca changed since keyway started: restart keyway to apply proxy.upstream_ca'
        : "if this is an internal API with its own CA, add that CA's PEM file to proxy.upstream_ca in the config",
    });
  }
  if (code !== undefined && (code.includes('CERT') || code.includes('CRL') || code.startsWith('ERR_TLS') || code.includes('SSL'))) {
    return new ProxyError('upstream_unreachable', `${authority}: TLS verification failed (${code})`, {
      grant,
      cause: err,
      hint: 'the certificate is expired, not yet valid or for another name: fix it on that host (proxy.upstream_ca only adds CAs to trust)',
    });
  }
  return new ProxyError('upstream_unreachable', `${authority}: ${code ?? 'request failed'}`, { grant, cause: err });
}

/** A TLS alert the peer sent (OpenSSL's ERR_SSL_..._ALERT_... codes), anywhere in the cause chain. */
function findAlert(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.includes('ALERT')) return code;
  }
  return undefined;
}

/**
 * A peer that checks the client certificate itself after the TLS 1.3 handshake (Node's own https
 * server does) sends no alert: it closes the connection before reading a byte of the request. On a
 * connection that presented a certificate, a close with nothing answered is that refusal.
 */
function closedUnanswered(err: unknown): string | undefined {
  const e = err as { code?: unknown; socket?: { bytesRead?: unknown } };
  if ((e.code === 'UND_ERR_SOCKET' || e.code === 'ECONNRESET') && e.socket?.bytesRead === 0) return 'closed the connection after the handshake, unanswered';
  return undefined;
}

function findCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** A ProxyError raised inside a connect (the egress check in the lookup), however deep undici wrapped it. */
function findProxyError(err: unknown): ProxyError | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof ProxyError) return e;
    const carried = (e as { proxyError?: unknown }).proxyError;
    if (carried instanceof ProxyError) return carried;
  }
  return undefined;
}
