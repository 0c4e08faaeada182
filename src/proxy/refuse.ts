import type { Duplex } from 'node:stream';
import { agentChain } from '../credentials/agents.ts';
import type { ProxyError } from '../errors/index.ts';
import { AuditDraft } from './audit-event.ts';
import type { ClientResponse } from './client-message.ts';
import type { Connection } from './connection.ts';
import { sendError, sendErrorOnSocket } from './respond.ts';
import type { Records } from './contract.ts';

/** Where a refusal goes: a response (HTTP/1.1, or an HTTP/2 stream's) or a raw socket (a CONNECT, an upgrade). */
export type RefusalTarget = ClientResponse | Duplex;

/**
 * Every refusal keyway gives: the audit line (which counts it in the metrics), then the error in
 * the framing its target needs. A response whose head already went out is cut instead (respond.ts).
 */
export function refuse(records: Records, draft: AuditDraft, error: ProxyError, to: RefusalTarget): void {
  draft.failed(error);
  draft.commit(records);
  answer(to, error);
}

/**
 * The same refusal for an exchange or a WebSocket whose audit line is committed when its response
 * or socket closes (exchange.ts, websocket/forwarder.ts): recorded on the line, answered now.
 */
export function refuseOnClose(draft: AuditDraft, error: ProxyError, to: RefusalTarget): void {
  draft.failed(error);
  answer(to, error);
}

function answer(to: RefusalTarget, error: ProxyError): void {
  if ('writeHead' in to) sendError(to, error);
  else sendErrorOnSocket(to, error);
}

/**
 * A draft with what the connection knows (target, agent, client), or only the client's address
 * before a connection was made. The path is given only once normalised: never the raw target.
 */
export function draftOn(conn: Connection | undefined, method: string | null, client: string, path: string | null = null): AuditDraft {
  const draft = new AuditDraft({
    method,
    host: conn?.target.host ?? '',
    port: conn?.target.port ?? 0,
    client: conn?.client ?? client,
    agent: conn?.agent.id ?? null,
    path,
  });
  if (conn?.via !== undefined) draft.event.via = conn.via;
  if (conn?.agent.identity !== undefined) draft.event.identity = conn.agent.identity;
  // A delegated agent's chain (src/delegation/), root first: on every line of its requests, and only then.
  const chain = conn === undefined ? undefined : agentChain(conn.agent);
  if (chain !== undefined) draft.event.chain = chain;
  return draft;
}

/** The client's address as the audit line names it. */
export const clientAddress = (socket: { remoteAddress?: string | undefined } | null | undefined): string => socket?.remoteAddress ?? 'unknown';
