import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ProxyError } from '../../errors/index.ts';
import type { Connection } from '../connection.ts';
import { draftOn } from '../refuse.ts';
import { StagedRequest } from '../stages/request.ts';
import { POLICY_VIOLATION } from '../websocket-frames/close-codes.ts';

/** The close frame's reason for each way keyway ends a WebSocket: short, and never a value. */
const CLOSE_REASONS: Partial<Record<ProxyError['code'], string>> = {
  host_not_allowed: 'keyway: grant revoked',
  placeholder_refused: 'keyway: captured login dropped',
  proxy_auth_required: 'keyway: sign-in revoked',
  request_timeout: 'keyway: connection too old',
};

/**
 * A WebSocket handshake through the head stages, and then the WebSocket it opened: the client is
 * gone when its socket closes, and a revocation (open-exchanges.ts) closes the WebSocket with 1008
 * once the 101 went out (`closeWith`, set by the forwarder), or the socket before that.
 */
export class Handshake extends StagedRequest {
  readonly #socket: Duplex;
  /** Set once the 101 went out: sends the agent a close frame and ends both sides (forwarder.ts). */
  closeWith: ((code: number, reason: string) => void) | undefined = undefined;

  constructor(conn: Connection, req: IncomingMessage, socket: Duplex) {
    // The path is set once normalised: the audit names the path sent, never the raw one.
    super(conn, req, draftOn(conn, req.method ?? 'GET', conn.client), req.url ?? '/');
    this.#socket = socket;
  }

  override onClientGone(listener: () => void): () => void {
    const socket = this.#socket;
    if (socket.destroyed) {
      queueMicrotask(listener);
      return () => undefined;
    }
    socket.once('close', listener);
    return () => void socket.off('close', listener);
  }

  override revoke(error: ProxyError): void {
    this.draft.failed(error);
    if (this.closeWith !== undefined) this.closeWith(POLICY_VIOLATION, CLOSE_REASONS[error.code] ?? 'keyway: closed');
    else this.#socket.destroy();
  }
}
