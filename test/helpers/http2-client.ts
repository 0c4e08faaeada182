import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { type ClientHttp2Session, connect as connectH2, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { connect } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';

// Node's own HTTP/2 client through keyway: a CONNECT on a raw socket, TLS over it with the keyway
// CA trusted explicitly, then node:http2 on that TLS socket. Every wait is bounded.

/** CONNECT `authority` through the proxy, then TLS offering `alpn`; resolves once the handshake is done. */
export async function tlsThroughProxy(
  proxyPort: number,
  authority: string,
  caPath: string,
  options: { alpn?: string[]; proxyAuth?: string; timeoutMs?: number; localAddress?: string } = {},
): Promise<TLSSocket> {
  const { alpn = ['h2'], proxyAuth, timeoutMs = 5_000, localAddress } = options;
  const socket = connect({ port: proxyPort, host: '127.0.0.1', ...(localAddress === undefined ? {} : { localAddress }) });
  const timer = setTimeout(() => socket.destroy(new Error(`CONNECT ${authority} not answered within ${timeoutMs} ms`)), timeoutMs);
  try {
    await once(socket, 'connect');
    const auth = proxyAuth === undefined ? '' : `Proxy-Authorization: Basic ${Buffer.from(proxyAuth).toString('base64')}\r\n`;
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`);
    let head = '';
    while (!head.includes('\r\n\r\n')) {
      const [chunk] = (await once(socket, 'data')) as [Buffer];
      head += chunk.toString('latin1');
    }
    if (!head.startsWith('HTTP/1.1 200')) throw new Error(`CONNECT refused: ${head.split('\r\n')[0]}`);
    const host = authority.slice(0, authority.lastIndexOf(':'));
    const tls = connectTls({ socket, servername: host, ca: readFileSync(caPath, 'utf8'), ALPNProtocols: alpn });
    await once(tls, 'secureConnect');
    return tls;
  } finally {
    clearTimeout(timer);
  }
}

/** An HTTP/2 session to `authority` through keyway. */
export async function h2ThroughProxy(proxyPort: number, authority: string, caPath: string, proxyAuth?: string): Promise<ClientHttp2Session> {
  const tls = await tlsThroughProxy(proxyPort, authority, caPath, { proxyAuth });
  if (tls.alpnProtocol !== 'h2') throw new Error(`keyway chose ${String(tls.alpnProtocol)} in ALPN, not h2`);
  const session = connectH2(`https://${authority}`, { createConnection: () => tls });
  session.on('error', () => undefined);
  return session;
}

export interface H2Response {
  headers: IncomingHttpHeaders;
  body: Buffer;
  trailers: IncomingHttpHeaders;
}

/** One request on a session; the whole response, or a rejection if the stream closes first (bounded in time). */
export function h2Request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: Buffer | string, timeoutMs = 10_000): Promise<H2Response> {
  const stream = session.request(headers, { endStream: body === undefined });
  if (body !== undefined) stream.end(body);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let response: IncomingHttpHeaders | undefined;
    let trailers: IncomingHttpHeaders = {};
    const timer = setTimeout(() => stream.close(), timeoutMs);
    stream.on('response', (h: IncomingHttpHeaders) => (response = h));
    stream.on('trailers', (t: IncomingHttpHeaders) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => undefined); // reported by 'close' below
    stream.once('close', () => {
      clearTimeout(timer);
      if (response && stream.readableEnded) resolve({ headers: response, body: Buffer.concat(chunks), trailers });
      else reject(new Error(`the stream closed before its response ended (RST_STREAM code ${stream.rstCode})`));
    });
  });
}
