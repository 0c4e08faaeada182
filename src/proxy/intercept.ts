import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { ExchangeContext } from './exchange.ts';
import type { ProxyRuntime } from './runtime.ts';

const TLS_HANDSHAKE = 0x16;

/**
 * Terminates the client's TLS with a leaf for the CONNECT target, signed by keyway's CA, and hands
 * the decrypted stream to the inner HTTP server, which runs each request through handleExchange.
 * A client that speaks plain HTTP inside the tunnel is served too, as http (grants then need
 * allow_http).
 */
export function intercept(runtime: ProxyRuntime, inner: Server, contexts: WeakMap<object, ExchangeContext>, client: Duplex, head: Buffer, ctx: Omit<ExchangeContext, 'scheme'>): void {
  client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  const start = (first: Buffer) => {
    if (first.length > 0) client.unshift(first);
    if (first[0] === TLS_HANDSHAKE) {
      // The leaf follows the CONNECT target, not SNI: the Host check and the upstream both use
      // the target, so a certificate for any other name would only hide a mismatch.
      const tlsSocket = new TLSSocket(client as Socket, {
        isServer: true,
        secureContext: runtime.tlsContext(ctx.target.host),
        ALPNProtocols: ['http/1.1'],
      });
      tlsSocket.on('error', (err: NodeJS.ErrnoException) => {
        runtime.logger.debug({ host: ctx.target.host, code: err.code }, 'client TLS failed (does it trust the keyway CA?)');
        client.destroy();
      });
      contexts.set(tlsSocket, { ...ctx, scheme: 'https' });
      inner.emit('connection', tlsSocket);
    } else {
      contexts.set(client, { ...ctx, scheme: 'http' });
      inner.emit('connection', client);
      // pause() above stopped the flow, and the HTTP server does not restart it: without this the
      // request sits unread and the socket leaks (issue 8, defect 2).
      client.resume();
    }
  };
  if (head.length > 0) {
    start(head);
  } else {
    client.once('data', (chunk: Buffer) => {
      client.pause();
      start(chunk);
    });
  }
}
