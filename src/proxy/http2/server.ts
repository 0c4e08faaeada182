import { constants, createServer, type Http2ServerRequest, type Http2ServerResponse, type Http2Session, type ServerOptions } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { TimeoutsConfig } from '../../config/index.ts';
import type { Connection } from '../connection.ts';
import { type Exchange, heldUpByClient, probeWhileHeldUp } from './client-probe.ts';

// The inner server for intercepted connections whose client chose h2 in ALPN (intercept.ts). Like
// the HTTP/1.1 inner server it never listens: each decrypted TLS socket is handed to it, and every
// stream on it becomes one request through the same dispatch (dispatch.ts) as over HTTP/1.1.

/**
 * HTTP/2's own attacks, each bounded here explicitly rather than left to whatever a Node release
 * defaults to. A session that breaks one is closed (GOAWAY) or the stream refused; other clients,
 * on their own sessions, are not affected.
 */
export const HTTP2_LIMITS = {
  /** Streams open at once on one connection; more are refused (REFUSED_STREAM). */
  maxConcurrentStreams: 100,
  /** Bytes of one header list (names + values + 32 each, RFC 9113 6.5.2); past it: 431 or a reset. */
  maxHeaderListSize: 64 * 1024,
  /** Header fields in one request, pseudo-headers included. */
  maxHeaderListPairs: 128,
  /**
   * Rapid reset (CVE-2023-44487): nghttp2 lets a client cancel this many streams at once, then this
   * many per second; past it the session ends with ENHANCE_YOUR_CALM.
   */
  streamResetBurst: 200,
  streamResetRate: 50,
  /** Streams refused (over maxConcurrentStreams) and frames judged invalid before the session ends. */
  maxSessionRejectedStreams: 100,
  maxSessionInvalidFrames: 100,
  /** Settings in one SETTINGS frame, and SETTINGS keyway sent but the client has not acknowledged. */
  maxSettings: 32,
  maxOutstandingSettings: 10,
  /** PINGs keyway sent and not yet acknowledged (a client's PING flood is bounded by maxSessionMemory). */
  maxOutstandingPings: 10,
  /** MiB one session may hold (header tables, queued frames, buffered data); past it, new streams are refused. */
  maxSessionMemory: 8,
} as const;

export interface Http2Inner {
  /**
   * Serves HTTP/2 on a client's TLS socket whose ALPN chose h2: every stream belongs to `conn`.
   * `transport` is the connection under the TLS (probed when the client holds up a stream).
   */
  adopt(tlsSocket: TLSSocket, conn: Connection, transport: Duplex): Http2Session;
  retime(timeouts: TimeoutsConfig): void;
  /** Every session still open: destroyed (stop, once the drain is over). */
  closeAll(): void;
}

export function createHttp2Inner(
  timeouts: TimeoutsConfig,
  onRequest: (req: Http2ServerRequest, res: Http2ServerResponse, conn: Connection | undefined) => void,
): Http2Inner {
  const { maxConcurrentStreams, maxHeaderListSize, ...sessionLimits } = HTTP2_LIMITS;
  const options: ServerOptions = {
    ...sessionLimits,
    settings: { maxConcurrentStreams, maxHeaderListSize, enablePush: false, enableConnectProtocol: false },
  };
  const server = createServer(options);
  const adopted = new WeakMap<Http2Session, Adopted>();
  const sessions = new Set<Http2Session>();
  // The session is made synchronously inside emit('connection'): this is how adopt learns it.
  let adopting: { conn: Connection; session?: Http2Session } | undefined;
  server.on('session', (session: Http2Session) => {
    if (!adopting) return void session.destroy();
    adopting.session = session;
    const record: Adopted = { conn: adopting.conn, openStreams: 0, exchanges: new Set() };
    adopted.set(session, record);
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    session.on('stream', (stream) => {
      record.openStreams++;
      stream.once('close', () => record.openStreams--);
    });
    // Errors end the session (the socket closes with it); nothing to report to the agent.
    session.on('error', () => undefined);
  });
  server.setTimeout(timeouts.idle);
  // No frame either way for proxy.timeouts.idle: a session with no stream open is closed (GOAWAY).
  // One whose streams wait on an upstream is left to the upstream's own timeouts.
  server.on('timeout', (session: Http2Session) => {
    if ((adopted.get(session)?.openStreams ?? 0) === 0) session.close();
  });
  let bodyStallMs = timeouts.body_stall;
  const request = (req: Http2ServerRequest, res: Http2ServerResponse) => {
    // Errors on a stream (a reset by the client) close it; the response's 'close' is what the audit hears.
    req.stream.on('error', () => undefined);
    enforceStreamStall(req, res, bodyStallMs);
    const record = adopted.get(req.stream.session as Http2Session);
    if (record) {
      const exchange: Exchange = [req, res];
      record.exchanges.add(exchange);
      req.stream.once('close', () => record.exchanges.delete(exchange));
    }
    onRequest(req, res, record?.conn);
  };
  server.on('request', request);
  // Node would answer these itself (405, 417) without an audit line: the caller refuses them.
  server.on('connect', request);
  server.on('checkExpectation', request);
  return {
    adopt(tlsSocket, conn, transport) {
      const pending: { conn: Connection; session?: Http2Session } = { conn };
      adopting = pending;
      try {
        server.emit('connection', tlsSocket);
      } finally {
        adopting = undefined;
      }
      if (!pending.session) throw new Error('node:http2 made no session for the socket');
      const session = pending.session;
      // The client closed its side (FIN or close_notify). tls.Server's sockets would end with it
      // (allowHalfOpen false); this one, made by hand, stays half-open and node:http2 does not
      // notice: the session would hold the socket until the idle timeout. Streams in flight
      // finish, then it closes.
      tlsSocket.once('end', () => session.close());
      const record = adopted.get(session);
      if (record) session.once('close', probeWhileHeldUp(tlsSocket, transport, record.exchanges));
      return session;
    },
    retime(t) {
      server.setTimeout(t.idle);
      bodyStallMs = t.body_stall;
    },
    closeAll() {
      for (const session of sessions) session.destroy();
      server.close();
    },
  };
}

/**
 * body_stall for one stream, as timeouts.ts does for an HTTP/1.1 connection: the stream's
 * inactivity timer (reset by every frame either way) fires after body_stall, and the stream is
 * cancelled if the silence is the client's: a request body that stopped, or a response it stopped
 * reading. Waiting on the upstream is left to the upstream's own timeouts. A client that died is
 * let go sooner (client-probe.ts).
 */
function enforceStreamStall(req: Http2ServerRequest, res: Http2ServerResponse, ms: number): void {
  req.stream.setTimeout(ms, () => {
    if (heldUpByClient(req, res)) req.stream.close(constants.NGHTTP2_CANCEL);
  });
}

interface Adopted {
  readonly conn: Connection;
  openStreams: number;
  /** Its requests in flight, for the client probe. */
  readonly exchanges: Set<Exchange>;
}
