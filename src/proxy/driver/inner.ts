import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Http2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { TimeoutsConfig } from '../../config/index.ts';
import { http } from '../../net/node-http.ts';
import type { AnswersOwed } from '../http1/answers-owed.ts';
import type { Connection } from '../connection.ts';
import { dispatch, dispatchUpgrade } from './dispatch.ts';
import { createHttp2Inner } from '../http2/server.ts';
import { refuseChunkedUpgrade, refuseExpectation, refuseMalformed, serveRequests } from '../http1/parser-quirks.ts';
import type { Records } from '../contract.ts';
import { httpServerOptions, retimeServer } from './timeouts.ts';
import { isWebSocketHandshake } from '../websocket-handshake.ts';

/**
 * The servers that read intercepted connections. They never listen on a port: intercept.ts hands
 * each decrypted (or plain) socket to one, with the connection it belongs to, and every request
 * on it goes to the one dispatch (dispatch.ts).
 */
export interface InnerServers {
  /** The HTTP/1.1 server (its connections are tracked with the listener's: client-connections.ts). */
  readonly http1Server: Server;
  /** Serves HTTP/1.1 on `socket` for `conn`. */
  http1(socket: Duplex, conn: Connection): void;
  /** Serves HTTP/2 on a client's TLS socket whose ALPN chose h2; `transport` is the connection under it. */
  http2(tlsSocket: TLSSocket, conn: Connection, transport: Duplex): Http2Session;
  retime(timeouts: TimeoutsConfig): void;
  /** Every connection still open: destroyed (stop, once the drain is over). */
  closeAll(): void;
}

export function createInnerServers(records: Records, owed: AnswersOwed, timeouts: TimeoutsConfig): InnerServers {
  const connectionOf = new WeakMap<object, Connection>();
  // The stages check Host themselves, with an audit line. shouldUpgradeCallback: only a WebSocket
  // handshake takes the upgrade path; any other request with upgrade headers is an ordinary one.
  const inner = http.createServer({ ...httpServerOptions(timeouts), requireHostHeader: false, shouldUpgradeCallback: isWebSocketHandshake });
  // Node only checks head deadlines (headersTimeout) and tracks connections on a server that
  // emitted 'listening'; this one never listens.
  inner.emit('listening');
  serveRequests(inner, owed, (req: IncomingMessage, res: ServerResponse) => {
    const conn = connectionOf.get(req.socket);
    if (!refuseChunkedUpgrade(records, req, res, conn)) dispatch(req, res, conn);
  });
  inner.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const conn = connectionOf.get(req.socket);
    if (!conn) return void socket.destroy();
    void owed.settled(socket).then(() => dispatchUpgrade(req, socket, head, conn));
  });
  // Node answers an Expect other than 100-continue with a bare 417 itself, unaudited.
  inner.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    owed.add(req.socket, req, res);
    refuseExpectation(records, req, res, connectionOf.get(req.socket));
  });
  inner.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => refuseMalformed(records, owed, err, socket, connectionOf.get(socket)));
  const http2 = createHttp2Inner(timeouts, dispatch);
  return {
    http1Server: inner,
    http1(socket, conn) {
      connectionOf.set(socket, conn);
      inner.emit('connection', socket);
    },
    http2: (tlsSocket, conn, transport) => http2.adopt(tlsSocket, conn, transport),
    retime(t) {
      retimeServer(inner, t);
      http2.retime(t);
    },
    closeAll() {
      inner.closeAllConnections();
      http2.closeAll();
      inner.close(); // ends its head-deadline timer (it never listened: nothing else to close)
    },
  };
}
