// Where Node's HTTP/1 server, left to itself, answers pipelined requests out of turn or never: the
// Expect header and upgrade requests that are not WebSocket handshakes. Both listeners (plain and
// inside a CONNECT) route these requests through here. Found by the fuzz suite (test/hostile/fuzz.test.ts).

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ProxyError } from '../../errors/index.ts';
import type { AnswersOwed } from './answers-owed.ts';
import type { Connection } from '../connection.ts';
import { clientAddress, draftOn, refuse } from '../refuse.ts';
import type { Records } from '../contract.ts';

/**
 * Hands every request on `server` to `handle`, with its answer owed in turn: plain ones ('request')
 * and those sent with `Expect: 100-continue` ('checkContinue'), whose 100 waits its turn too.
 */
export function serveRequests(server: Server, owed: AnswersOwed, handle: (req: IncomingMessage, res: ServerResponse) => void): void {
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    owed.add(req.socket, req, res);
    handle(req, res);
  });
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    owed.add(req.socket, req, res);
    continueInTurn(owed, req, res);
    handle(req, res);
  });
}

/**
 * `Expect: 100-continue` (Node's 'checkContinue'). Node's own handling writes the 100 at once,
 * into the response's buffer when answers to pipelined requests are still ahead of it; the final
 * answer's head, once its body is a Buffer, is then put in front of that buffer, and the 100 lands
 * between the head and the body: the agent cannot frame the answer. Here the 100 waits for the
 * answers ahead, and is skipped when the final answer has started by then (the client sends its
 * body after its own wait; Node then closes the connection after the answer, as it should).
 */
function continueInTurn(owed: AnswersOwed, req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket; // req.socket is null once the exchange is over
  void owed.settledBefore(socket, res).then(() => {
    if (!res.headersSent && !res.writableEnded && !socket.destroyed) res.writeContinue();
  });
}

/**
 * An `Expect` other than 100-continue (Node's 'checkExpectation'): keyway knows no other
 * expectation, so it refuses the request with its own error and one audit line, and closes rather
 * than read a body the agent may be holding back.
 */
export function refuseExpectation(records: Records, req: IncomingMessage, res: ServerResponse, conn: Connection | undefined): void {
  refuseAndClose(records, req, res, conn, new ProxyError('bad_request', 'keyway supports no Expect other than 100-continue'));
}

/**
 * A request that asks to switch protocols (`Upgrade`, other than a WebSocket handshake, which
 * takes its own path) is served as plain HTTP/1.1 without the header. Node's parser stops at the
 * end of such a request: with a chunked body, a malformed trailer is then never reported and the
 * request never ends (the agent waits for body_stall). No client sends a chunked body with an
 * upgrade (curl's h2c upgrade has none), so it is refused up front, before anything goes upstream.
 * Returns whether it refused.
 */
export function refuseChunkedUpgrade(records: Records, req: IncomingMessage, res: ServerResponse, conn: Connection | undefined): boolean {
  if (req.headers.upgrade === undefined || req.headers['transfer-encoding'] === undefined) return false;
  refuseAndClose(records, req, res, conn, new ProxyError('bad_request', 'a request asking for a protocol upgrade cannot have a chunked body'));
  return true;
}

function refuseAndClose(records: Records, req: IncomingMessage, res: ServerResponse, conn: Connection | undefined, error: ProxyError): void {
  res.shouldKeepAlive = false;
  refuse(records, draftOn(conn, req.method ?? null, clientAddress(req.socket)), error, res);
}

/**
 * The HTTP parser refused what the client sent: answer 400 and still write one audit line. The
 * answer waits for those still owed to requests pipelined ahead and read whole: written at once,
 * it would cut into them (and end the connection before they are sent). A request cut inside its
 * body is the one refused: answered at once, as its answer can never finish.
 */
export function refuseMalformed(records: Records, owed: AnswersOwed, err: NodeJS.ErrnoException, socket: Duplex, conn: Connection | undefined): void {
  // The parser reports an error again for every chunk still arriving: one answer and one audit line.
  if (socket.writableEnded || refusedMalformed.has(socket)) return;
  // Node's headersTimeout (proxy.timeouts.headers): a head begun and never finished is answered
  // 408 and audited, as a malformed one is, so a client holding heads open is on record.
  const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  if (!timedOut && !err.code?.startsWith('HPE_')) {
    socket.destroy(); // a reset, not a request: nothing to answer or audit
    return;
  }
  refusedMalformed.add(socket);
  const error = timedOut
    ? new ProxyError('request_timeout', 'the request head did not arrive in time (proxy.timeouts.headers)')
    : new ProxyError('bad_request', 'malformed HTTP request');
  const draft = draftOn(conn, null, clientAddress(socket as Duplex & { remoteAddress?: string }));
  const answer = () => refuse(records, draft, error, socket);
  if (owed.allRead(socket)) void owed.settled(socket).then(answer);
  else answer();
}

const refusedMalformed = new WeakSet<object>();
