// Where Node's HTTP/1 server, left to itself, answers pipelined requests out of turn or never: the
// Expect header and upgrade requests that are not WebSocket handshakes. Both listeners (plain and
// inside a CONNECT) route these requests through here. Found by the fuzz suite (issue 8).

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { ProxyError } from '../errors/index.ts';
import { AuditDraft } from './audit-event.ts';
import type { ExchangeContext } from './exchange.ts';
import { sendError } from './respond.ts';
import type { ProxyRuntime } from './runtime.ts';
import type { AnswersOwed } from './websocket.ts';

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
export function refuseExpectation(runtime: ProxyRuntime, req: IncomingMessage, res: ServerResponse, ctx: ExchangeContext | undefined): void {
  refuse(runtime, req, res, ctx, new ProxyError('bad_request', 'keyway supports no Expect other than 100-continue'));
}

/**
 * A request that asks to switch protocols (`Upgrade`, other than a WebSocket handshake, which
 * takes its own path) is served as plain HTTP/1.1 without the header. Node's parser stops at the
 * end of such a request: with a chunked body, a malformed trailer is then never reported and the
 * request never ends (the agent waits for body_stall). No client sends a chunked body with an
 * upgrade (curl's h2c upgrade has none), so it is refused up front, before anything goes upstream.
 * Returns whether it refused.
 */
export function refuseChunkedUpgrade(runtime: ProxyRuntime, req: IncomingMessage, res: ServerResponse, ctx: ExchangeContext | undefined): boolean {
  if (req.headers.upgrade === undefined || req.headers['transfer-encoding'] === undefined) return false;
  refuse(runtime, req, res, ctx, new ProxyError('bad_request', 'a request asking for a protocol upgrade cannot have a chunked body'));
  return true;
}

function refuse(runtime: ProxyRuntime, req: IncomingMessage, res: ServerResponse, ctx: ExchangeContext | undefined, error: ProxyError): void {
  const draft = new AuditDraft({
    method: req.method ?? null,
    host: ctx?.target.host ?? '',
    port: ctx?.target.port ?? 0,
    client: ctx?.client ?? req.socket.remoteAddress ?? 'unknown',
    agent: ctx?.agent.id ?? null,
  });
  draft.failed(error);
  draft.commit(runtime);
  res.shouldKeepAlive = false;
  sendError(res, error);
}
