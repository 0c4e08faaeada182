import type { Http2ServerRequest } from 'node:http2';
import { ProxyError } from '../../errors/index.ts';
import { countHeader } from '../headers.ts';
import { formatAuthority, parseAuthority, type Target } from '../target.ts';

// What an HTTP/2 request means for the stages written for HTTP/1.1 (RFC 9113 8.3). Node's http2
// server has already refused a malformed stream before keyway sees it (nghttp2's message checks:
// connection-specific fields such as Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding
// and Upgrade, a TE other than "trailers", uppercase names, a missing or duplicated pseudo-header)
// and has joined repeated Cookie fields with "; " (8.2.3). Left to keyway: the authority.

/**
 * Stage (HTTP/2 in place of the Host check): `:authority` must name the CONNECT target, as Host
 * does over HTTP/1.1, with the same error. A Host field beside it must name the same (8.3.1: a
 * server should treat a disagreement as malformed; an upstream reading Host would see another
 * host). One of the two is required, as Host is over HTTP/1.1.
 */
export function checkAuthority(req: Http2ServerRequest, target: Target): void {
  const authority = req.headers[':authority'];
  const host = req.headers.host;
  // rawHeaders is built anew on each read: only read when there is a Host to count (most HTTP/2
  // clients send :authority alone).
  if (host !== undefined && countHeader(req.rawHeaders, 'host') > 1) throw new ProxyError('host_mismatch', 'the request has more than one Host header');
  if (authority === undefined && host === undefined) throw new ProxyError('bad_request', 'an HTTP/2 request must carry :authority (or Host)');
  if (authority !== undefined) namesTarget(':authority', authority, target);
  if (host !== undefined) namesTarget('Host header', host, target);
}

function namesTarget(name: string, value: string, target: Target): void {
  // The spellings clients send (the target's own name, with or without its port) need no parse.
  // Not for an IPv6 target: it must be bracketed, which the parse checks.
  if (!target.host.includes(':') && (value === target.host || value === `${target.host}:${target.port}`)) return;
  let named: Target;
  try {
    named = parseAuthority(value, target.port);
  } catch {
    throw new ProxyError('host_mismatch', `the ${name} is not a valid host`);
  }
  if (named.host !== target.host || named.port !== target.port) {
    // The message names the target only: header values never go back into an error body.
    throw new ProxyError('host_mismatch', `the ${name} differs from the connection's target ${formatAuthority(target)}`);
  }
}

const LOWER_CASE = /[a-z]/;

/**
 * What keyway refuses before the stages, as over HTTP/1.1: CONNECT inside an intercepted connection
 * (a tunnel keyway cannot see into), a method not in upper case, and an Expect other than 100-continue.
 */
export function refusedHttp2Request(req: Http2ServerRequest): ProxyError | undefined {
  if (req.method === 'CONNECT') return new ProxyError('bad_request', 'CONNECT inside an intercepted HTTP/2 connection is not proxied');
  // Methods are case-sensitive (RFC 9110 9.1), but rules name them in upper case and many servers
  // read `delete` as DELETE: `get` would pass a GET rule, `delete` slip past a DELETE deny. Over
  // HTTP/1.1 Node's parser takes only upper-case methods; HTTP/2's :method is any token, so refuse
  // what HTTP/1.1 would. The method is not echoed: it is the agent's text.
  if (LOWER_CASE.test(req.method)) return new ProxyError('bad_request', 'the :method must be in upper case (methods are case-sensitive)');
  const expect = req.headers.expect;
  if (expect !== undefined && expect.toLowerCase() !== '100-continue')
    return new ProxyError('bad_request', 'keyway supports no Expect other than 100-continue');
  return undefined;
}
