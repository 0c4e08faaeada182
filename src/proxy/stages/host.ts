import { ProxyError } from '../../errors/index.ts';
import { type ClientRequest, isHttp2Request } from '../client-message.ts';
import { countHeader } from '../headers.ts';
import { checkAuthority } from '../http2/request.ts';
import { formatAuthority, parseAuthority, type Target } from '../target.ts';
import type { HeadStage } from './request.ts';

/** The Host header (HTTP/2: `:authority`, http2/request.ts) must name the connection's target. */
export const host: HeadStage = {
  name: 'host',
  injected: false,
  run({ req, conn }) {
    if (isHttp2Request(req)) checkAuthority(req, conn.target);
    else checkHost(req, conn.target);
  },
};

/**
 * One Host header only. HTTP/1.1 requires Host (RFC 9112 3.2): keyway answers its absence itself,
 * with an audit line, instead of letting Node's parser answer a bare 400. An HTTP/1.0 request
 * without Host is judged on the connection's target.
 */
function checkHost(req: ClientRequest, target: Target): void {
  if (countHeader(req.rawHeaders, 'host') > 1) throw new ProxyError('host_mismatch', 'the request has more than one Host header');
  const header = req.headers.host;
  if (header === undefined) {
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return;
    throw new ProxyError('bad_request', 'an HTTP/1.1 request must carry a Host header');
  }
  // The spellings clients send (the target's own name, with or without its port) need no parse.
  // Not for an IPv6 target: its Host header must be bracketed, which the parse checks.
  if (!target.host.includes(':') && (header === target.host || header === `${target.host}:${target.port}`)) return;
  let named: Target;
  try {
    named = parseAuthority(header, target.port);
  } catch {
    throw new ProxyError('host_mismatch', 'the Host header is not a valid host');
  }
  if (named.host !== target.host || named.port !== target.port) {
    // The message names the target only: header values never go back into an error body.
    throw new ProxyError('host_mismatch', `the Host header differs from the connection's target ${formatAuthority(target)}`);
  }
}
