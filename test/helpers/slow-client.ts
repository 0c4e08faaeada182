// Clients that do too little, for the timeout tests and the slow-clients suite: they open a phase of
// a connection through keyway and stop there. Every wait is bounded in time.

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { openConnect, openTunnel, startTls } from './raw-http.ts';

/** Resolves with the ms until keyway closed `socket` (it must be read for a FIN to be seen); rejects after `limitMs`. */
export function closedWithin(socket: Socket | TLSSocket, limitMs: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`keyway kept the connection open for more than ${limitMs} ms`));
    }, limitMs);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
    socket.resume();
  });
}

/** The phases of a connection a slow client can stop in. */
export type SlowPhase = 'connect-idle' | 'partial-hello' | 'partial-head' | 'stalled-body' | 'idle-keepalive';

export interface SlowTarget {
  proxyPort: number;
  /** host:port of a granted host whose upstream is up (intercepted by keyway). */
  authority: string;
  servername: string;
  /** keyway's CA, for the phases past the handshake. */
  ca: string;
}

/**
 * Opens one connection through keyway and leaves it in `phase`. Resolves with the socket to watch
 * (the TLS one past the handshake) once the phase is reached.
 */
export async function openSlow(phase: SlowPhase, target: SlowTarget): Promise<Socket | TLSSocket> {
  if (phase === 'connect-idle') {
    const { socket } = await openConnect(target.proxyPort, target.authority);
    return socket;
  }
  const raw = await openTunnel(target.proxyPort, target.authority);
  if (phase === 'partial-hello') {
    raw.write(Buffer.from([0x16])); // the first byte of a TLS record, and nothing more
    return raw;
  }
  const tls = await startTls(raw, target.servername, target.ca);
  const host = `Host: ${target.authority}\r\n`;
  if (phase === 'partial-head') tls.write(`GET /echo HTTP/1.1\r\n${host}X-Slow: `);
  else if (phase === 'stalled-body') tls.write(`POST /upload HTTP/1.1\r\n${host}Content-Length: 1000\r\n\r\n${'x'.repeat(10)}`);
  else await oneRequest(tls, `GET /echo HTTP/1.1\r\n${host}\r\n`);
  return tls;
}

/** Writes a request and waits for the end of its (content-length) response; the connection stays open. */
function oneRequest(socket: TLSSocket, text: string, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error('no response')), timeoutMs);
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(/content-length: *(\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0);
      if (buffered.length - end - 4 < length) return;
      clearTimeout(timer);
      socket.off('data', onData);
      resolve();
    };
    socket.on('data', onData);
    socket.write(text);
  });
}
