import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ProxyError } from '../errors/index.ts';
import { normaliseRequestTarget } from '../policy/request-path.ts';
import type { AuditDraft } from './audit-event.ts';
import { type ClientRequest, type ClientResponse, isHttp2Request } from './client-message.ts';
import type { Connection, RefusedInside } from './connection.ts';
import { draftOn, refuse } from './refuse.ts';
import type { Records } from './contract.ts';

// A CONNECT refused for a host keyway intercepts anyway (a grant covers it, but this agent may not
// use that grant) is refused inside TLS instead of on the CONNECT: most clients drop the body of a
// refused CONNECT (curl prints only "CONNECT tunnel failed, response 403"), while the answer to a
// request inside the tunnel reaches the agent whole, with its code, message and hint.
//
// What the agent gets from it: a TLS handshake with the leaf keyway would mint for the host anyway
// (a leaf proves nothing: every intercepted host gets one), and one JSON error per connection.
// Nothing is forwarded, no upstream is dialled or resolved, no credential is read, and no request
// byte is interpreted beyond the head: the body is drained and dropped and the connection closed
// after the answer, so a later decision (a grant added, a lease renewed) is taken on a new CONNECT.
// The inner server's timeouts (head, body stall, keep-alive) bound how long it can hold the socket.

/** A request inside a refused connection: the refusal, one audit line, then close. */
export function answerRefused(conn: Connection, req: ClientRequest, res: ClientResponse, refusal: RefusedInside): void {
  refusal.answered++;
  if (!isHttp2Request(req)) (res as { shouldKeepAlive: boolean }).shouldKeepAlive = false;
  answerError(conn, req, res, refusal.error);
  // HTTP/2: the session ends once its streams have (GOAWAY), as the HTTP/1.1 connection does.
  if (isHttp2Request(req)) req.stream.session?.close();
}

/** A request refused before any stage ran (or inside a refused connection): one audit line and the error. */
export function answerError(conn: Connection, req: ClientRequest, res: ClientResponse, error: ProxyError): void {
  req.resume(); // read and drop the body: never interpreted, never kept
  refuse(conn.runtime, requestDraft(req, conn, error), error, res);
}

/** A WebSocket handshake inside a refused connection: the same answer on the raw socket. */
export function answerRefusedUpgrade(conn: Connection, req: IncomingMessage, socket: Duplex, refusal: RefusedInside): void {
  refusal.answered++;
  refuse(conn.runtime, requestDraft(req, conn, refusal.error), refusal.error, socket);
}

/**
 * Every refused CONNECT leaves at least one audit line: when the connection closes with no request
 * answered (the client did not trust the CA, or sent nothing), the CONNECT's own line is written.
 */
export function auditIfUnanswered(records: Records, client: Duplex, connectDraft: AuditDraft, refusal: RefusedInside): void {
  client.once('close', () => {
    if (refusal.answered > 0) return;
    connectDraft.event.grant = refusal.error.grant ?? null;
    connectDraft.failed(refusal.error);
    connectDraft.commit(records);
  });
}

function requestDraft(req: ClientRequest, conn: Connection, error: ProxyError): AuditDraft {
  // The audit names a normalised path without its query, or none: never the raw target.
  const target = normaliseRequestTarget(req.url ?? '/');
  const draft = draftOn(conn, req.method ?? null, conn.client, target.ok ? target.path : null);
  // The grant the refusal is about (one the agent may not use), as its answer names it.
  draft.event.grant = error.grant ?? null;
  return draft;
}
