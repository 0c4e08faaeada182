// Raw HTTP through keyway, for tests that must see exactly what goes on the wire: a CONNECT written
// by hand, TLS on the tunnel trusting one given CA, a request written as text and the answer parsed
// from the bytes. Every wait is bounded in time.

import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { slack } from './load.ts';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export function parseResponse(raw: string): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = end === -1 ? raw : raw.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = end === -1 ? '' : raw.slice(end + 4);
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, body: headers['transfer-encoding'] === 'chunked' ? dechunk(body) : body };
}

/**
 * Decodes a chunked body (keyway sends a scanned body chunked: a redaction changes its length).
 * Sizes count bytes, so this works on the bytes; it throws on framing that does not end properly.
 */
export function dechunk(text: string): string {
  const raw = Buffer.from(text, 'utf8');
  const out: Buffer[] = [];
  let at = 0;
  for (let guard = 0; guard < 100_000; guard++) {
    const lineEnd = raw.indexOf('\r\n', at);
    if (lineEnd === -1) throw new Error(`chunked body without a size line at byte ${at}`);
    const size = parseInt(raw.subarray(at, lineEnd).toString('latin1').split(';')[0] ?? '', 16);
    if (!Number.isFinite(size)) throw new Error(`bad chunk size at byte ${at}`);
    at = lineEnd + 2;
    if (size === 0) return Buffer.concat(out).toString('utf8');
    if (raw.length < at + size + 2) throw new Error('chunked body cut short');
    out.push(raw.subarray(at, at + size));
    at += size + 2;
  }
  throw new Error('too many chunks');
}

/** Writes `text` on a stream and collects everything until the peer closes (bounded in time). */
export function exchange(stream: Duplex, text: string, timeoutMs = slack(5_000)): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      stream.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; got: ${Buffer.concat(chunks).toString('utf8').slice(0, 200)}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', done);
    stream.write(text);
  });
}

/** CONNECT through the proxy; resolves with the socket once the proxy's answer head has arrived. */
export function openConnect(port: number, authority: string, headers = ''): Promise<{ socket: Socket; status: number; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('CONNECT got no answer'));
    }, slack(5_000));
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      const rest = buffered.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      const head = buffered.subarray(0, end).toString('utf8');
      resolve({ socket, status: Number(head.split(' ')[1]), head });
    };
    socket.on('data', onData);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${headers}\r\n`);
  });
}

/** CONNECT through the proxy; resolves with the socket once the proxy answered 200, rejects otherwise. */
/** A CONNECT that was answered 200; `headers` are extra header lines (each ending in CRLF), e.g. Proxy-Authorization. */
export async function openTunnel(port: number, authority: string, headers = ''): Promise<Socket> {
  const { socket, head } = await openConnect(port, authority, headers);
  if (!head.startsWith('HTTP/1.1 200')) {
    socket.destroy();
    throw new Error(`CONNECT refused: ${head.split('\r\n')[0]}`);
  }
  return socket;
}

/** TLS on a tunnel, trusting `ca` alone. */
export function startTls(socket: Socket, servername: string, ca: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({ socket, servername, ca }, () => resolve(tls));
    tls.once('error', reject);
  });
}
