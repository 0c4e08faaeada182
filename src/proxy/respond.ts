import type { Duplex } from 'node:stream';
import { http } from '../net/node-http.ts';
import { ProxyError } from '../errors/index.ts';
import { type ClientResponse, cutResponse, writeHead } from './client-message.ts';

// keyway's own answers: a JSON body, X-Keyway-Error with the code, X-Keyway-Reason with the
// message on one line, and Proxy-Authenticate for 407 so that git (which sends credentials only
// when challenged) retries with them. The reason header is for answers whose body clients drop:
// a refused CONNECT (curl -v shows its headers, never its body).

/** Header values and reason phrases are one line of visible ASCII; the message is keyway's own text. */
const MAX_REASON = 300;

export function reasonLine(text: string): string {
  const visible = text.replace(/[^\x20-\x7e]/g, '?');
  return visible.length <= MAX_REASON ? visible : `${visible.slice(0, MAX_REASON - 3)}...`;
}

function errorHeaders(err: ProxyError, body: string): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'x-keyway-error': err.code,
    'x-keyway-reason': reasonLine(err.message),
    'cache-control': 'no-store',
  };
  if (err.code === 'proxy_auth_required') headers['proxy-authenticate'] = 'Basic realm="keyway"';
  if (err.retryAfter !== undefined) headers['retry-after'] = String(err.retryAfter);
  return headers;
}

export function sendError(res: ClientResponse, err: ProxyError): void {
  if (res.headersSent) {
    cutResponse(res);
    return;
  }
  const body = err.answer?.body ?? err.toBody();
  writeHead(res, err.answer?.status ?? err.status, errorHeaders(err, body));
  res.end(body);
}

/** For a refused CONNECT or upgrade: no ServerResponse, only the raw socket. */
export function sendErrorOnSocket(socket: Duplex, err: ProxyError): void {
  // Already answered: the parser reports an error again for every chunk still arriving after the
  // first, and a second end() would be a write after end, destroying the socket before the first
  // answer is flushed (seen inside TLS: the client got a reset instead of its 400).
  if (socket.destroyed || socket.writableEnded) return;
  const body = err.toBody();
  const head = Object.entries({ ...errorHeaders(err, body), connection: 'close' })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  // The reason phrase carries the code and message too: Python (http.client) reports a refused
  // CONNECT as "Tunnel connection failed: <status> <reason phrase>" and nothing else.
  const phrase = reasonLine(`${http.STATUS_CODES[err.status] ?? 'Refused'} (keyway ${err.code}: ${err.message})`);
  socket.end(`HTTP/1.1 ${err.status} ${phrase}\r\n${head}\r\n${body}`);
  // Closing with unread bytes in the kernel makes it send a reset, which can reach the client
  // before the answer and destroy it there: read and drop what is still coming, for a moment.
  socket.resume();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

const LINGER_MS = 2_000;

export function asProxyError(err: unknown): ProxyError {
  return err instanceof ProxyError ? err : new ProxyError('internal_error', 'keyway failed to handle the request', { cause: err });
}
