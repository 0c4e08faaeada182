import type { Server, ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TimeoutsConfig } from '../../config/index.ts';
import type { ClientConnections } from '../client-connections.ts';

// Every wait on a client is bounded (proxy.timeouts), and a client that closes while keyway waits
// is let go at once: a socket left in CLOSE-WAIT holds a file descriptor, and a few hundred idle
// clients used to exhaust them. The phases of a connection and what bounds each:
//
//   CONNECT answered, nothing sent yet ........ first_byte  (awaitFirstBytes)
//   TLS handshake with the client .............. handshake   (limitHandshake)
//   request head, from its first byte .......... headers     (Node's headersTimeout)
//   between requests on a kept-alive connection  idle        (Node's keepAliveTimeout)
//   a body that stops moving either way ........ body_stall  (the socket's inactivity timer)
//   an upstream's response head ................ upstream    (undici's headersTimeout, 504)
//   a blind tunnel with no byte either way ..... idle        (tunnel.ts)
//   a WebSocket with no frame either way ....... idle        (websocket/forwarder.ts)

/**
 * Options for both HTTP servers (the listener and the inner one for intercepted connections).
 * requestTimeout is off: an upload may rightly take long, so a body is judged by body_stall.
 */
export function httpServerOptions(t: TimeoutsConfig): ServerOptions {
  return {
    requestTimeout: 0,
    headersTimeout: t.headers,
    keepAliveTimeout: t.idle,
    // Node keeps an idle socket this much past the Keep-Alive: timeout it advertises, so that a
    // client reusing it at the last moment is not reset; small, so "idle" stays what it says.
    keepAliveTimeoutBuffer: Math.min(500, Math.ceil(t.idle / 10)),
    // Node checks head deadlines on this period: a fraction of the shortest one keeps the
    // overshoot small (at most a second with the defaults).
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(t.headers / 4))),
    // A request with neither Content-Length nor Transfer-Encoding has no body (RFC 9112 6.3), and
    // keyway never reads one (replay-body.ts hasBody): Node then skips the request stream's
    // 'data', 'end' and 'close' and the dump after the answer, which cost every GET (issue 38).
    // Node 24.12+; older versions ignore the option.
    optimizeEmptyRequests: true,
  };
}

/**
 * After a config reload: the server-side timeouts for connections accepted from now on (Node reads
 * these properties per connection or per check; connectionsCheckingInterval stays the start's).
 */
export function retimeServer(server: Server, t: TimeoutsConfig): void {
  const options = httpServerOptions(t);
  server.headersTimeout = t.headers;
  server.keepAliveTimeout = t.idle;
  server.keepAliveTimeoutBuffer = options.keepAliveTimeoutBuffer ?? server.keepAliveTimeoutBuffer;
  server.timeout = t.body_stall;
}

/**
 * body_stall on an HTTP server: its sockets' inactivity timer (reset by every byte read or
 * written) runs with that period, and when it fires this decides whose fault the silence is.
 * Node's default would destroy the socket on any timeout; with a listener here, it is up to us.
 */
export function enforceBodyStall(server: Server, t: TimeoutsConfig, connections: ClientConnections): void {
  server.timeout = t.body_stall;
  server.on('timeout', (socket: Socket) => {
    if (isStalledByClient(socket, connections)) socket.destroy();
    // Waiting on the upstream (its head, or a quiet stream): the upstream's own timeouts decide.
    // server.timeout, not t: a reload may have changed it (retimeServer).
    else socket.setTimeout(server.timeout);
  });
}

function isStalledByClient(socket: Socket, connections: ClientConnections): boolean {
  const { inFlight, latest } = connections.exchangeOn(socket);
  // Nothing in flight: a kept-alive connection past its idle time, or a head that never came.
  if (inFlight === 0 || !latest) return true;
  // The client stopped sending its request body, or stopped reading the response.
  if (!latest.req.complete) return true;
  return latest.res.headersSent && (latest.res.writableNeedDrain || socket.writableLength > 0);
}

/**
 * Waits for a client's first bytes after keyway answered its CONNECT. Resolves undefined (and
 * destroys the socket) if the client closes, fails or sends nothing within `ms`. The socket is
 * paused when the bytes are returned, so nothing is lost before the next reader attaches.
 */
export function awaitFirstBytes(socket: Duplex, ms: number): Promise<Buffer | undefined> {
  if (socket.destroyed) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const settle = (chunk: Buffer | undefined) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onGone);
      socket.off('close', onGone);
      socket.off('error', onGone);
      if (chunk === undefined) socket.destroy();
      resolve(chunk);
    };
    const onData = (chunk: Buffer) => {
      socket.pause();
      settle(chunk);
    };
    // A FIN counts as gone: the listener allows half-open sockets, so nothing else would close it.
    const onGone = () => settle(undefined);
    const timer = setTimeout(onGone, ms);
    socket.on('data', onData);
    socket.once('end', onGone);
    socket.once('close', onGone);
    socket.once('error', onGone);
  });
}

/**
 * Bounds a client's TLS handshake (a one-byte ClientHello would otherwise be held forever) and
 * lets go of a client that closes before it completes.
 */
export function limitHandshake(tlsSocket: Duplex & { once(event: 'secure', fn: () => void): unknown }, raw: Duplex, ms: number): void {
  const fail = () => {
    clearTimeout(timer);
    tlsSocket.destroy();
    raw.destroy();
  };
  const timer = setTimeout(fail, ms);
  tlsSocket.once('secure', () => {
    clearTimeout(timer);
    tlsSocket.off('end', fail);
  });
  tlsSocket.once('end', fail);
  tlsSocket.once('close', fail);
}
