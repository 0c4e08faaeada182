import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { ProxyError } from '../../errors/index.ts';
import { type ClientRequest, type ClientResponse, isHttp2Request } from '../client-message.ts';
import type { Connection } from '../connection.ts';
import { handleExchange } from './exchange.ts';
import { refusedHttp2Request } from '../http2/request.ts';
import { answerError, answerRefused, answerRefusedUpgrade } from '../refuse-inside.ts';
import { sendError } from '../respond.ts';
import { answerSelfCheck } from '../self-check.ts';
import { handleUpgrade } from '../websocket/forwarder.ts';

/**
 * Every request inside an intercepted connection, from the HTTP/1.1 and the HTTP/2 inner server
 * alike, by the connection's route: refused inside TLS, answered by keyway itself, or an exchange.
 */
export function dispatch(req: ClientRequest, res: ClientResponse, conn: Connection | undefined): void {
  if (!conn) return sendError(res, new ProxyError('internal_error', 'lost connection context'));
  const { route } = conn;
  if (route.kind === 'refuse-inside') return answerRefused(conn, req, res, route.refusal);
  // What HTTP/2 lets through that HTTP/1.1's parser would not (http2/request.ts).
  const refused = isHttp2Request(req) ? refusedHttp2Request(req) : undefined;
  if (refused) return answerError(conn, req, res, refused);
  if (route.kind === 'self-check') return answerSelfCheck(conn, req, res);
  void handleExchange(conn, req, res, req.url ?? '/');
}

/** A WebSocket handshake inside an intercepted connection (HTTP/1.1 only), by the same route. */
export function dispatchUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, conn: Connection): void {
  const { route } = conn;
  if (route.kind === 'refuse-inside') return answerRefusedUpgrade(conn, req, socket, route.refusal);
  void handleUpgrade(conn, req, socket, head);
}
