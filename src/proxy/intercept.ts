import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { ClientConnections } from './connections.ts';
import type { ExchangeContext } from './exchange.ts';
import type { ProxyRuntime } from './runtime.ts';
import { awaitFirstBytes, limitHandshake } from './timeouts.ts';

const TLS_HANDSHAKE = 0x16;

/**
 * Terminates the client's TLS with a leaf for the CONNECT target, signed by keyway's CA, and hands
 * the decrypted stream to the inner HTTP server, which runs each request through handleExchange.
 * A client that speaks plain HTTP inside the tunnel is served too, as http (grants then need
 * allow_http). The first byte and the handshake are each bounded in time (proxy.timeouts).
 */
export function intercept(
  runtime: ProxyRuntime,
  inner: Server,
  contexts: WeakMap<object, ExchangeContext>,
  connections: ClientConnections,
  client: Duplex,
  head: Buffer,
  ctx: Omit<ExchangeContext, 'scheme'>,
): void {
  const timeouts = runtime.config.proxy.timeouts;
  connections.pending(client);
  const start = (first: Buffer) => {
    client.unshift(first);
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
      limitHandshake(tlsSocket, client, timeouts.handshake);
      contexts.set(tlsSocket, { ...ctx, scheme: 'https' });
      connections.handedOff(client, tlsSocket);
      inner.emit('connection', tlsSocket);
    } else {
      contexts.set(client, { ...ctx, scheme: 'http' });
      connections.handedOff(client, client);
      inner.emit('connection', client);
      // The listener's parser let go of this socket paused and still marked consumed, so the inner
      // server reads it through 'data' events: without this nothing was read, and every plain
      // request inside a CONNECT hung.
      client.resume();
    }
  };
  client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length > 0) {
    start(head);
    return;
  }
  void awaitFirstBytes(client, timeouts.first_byte).then((first) => {
    if (first === undefined) runtime.logger.debug({ host: ctx.target.host }, 'CONNECT closed or timed out before its first byte');
    else start(first);
  });
}
