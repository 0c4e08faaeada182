import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { findPlaceholders, mayHoldPlaceholder } from '../../capture/core/placeholder.ts';
import type { ProxyTables } from '../../credentials/tables.ts';
import type { ProxyError } from '../../errors/index.ts';
import type { AgentShare } from '../agent-load.ts';
import type { Connection } from '../connection.ts';
import { draftOn } from '../refuse.ts';
import { StagedRequest } from '../stages/request.ts';
import { POLICY_VIOLATION } from '../websocket-frames/close-codes.ts';
import type { PlaceholderCheckOptions } from './client-placeholders.ts';

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
  /** Runs when the socket closes, before the audit line is written (a metered socket's last usage: model-socket.ts). */
  beforeCommit: (() => void) | undefined = undefined;

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

const capturing = new WeakMap<ProxyTables, boolean>();

/**
 * The search for captured tokens' placeholders in the agent's messages (client-placeholders.ts),
 * while some grant captures logins (found once per table build); undefined otherwise, when no
 * placeholder can be held and messages pass as they come.
 */
export function placeholderCheck(conn: Connection, share: AgentShare): PlaceholderCheckOptions | undefined {
  const tables = conn.decisions.tables();
  let some = capturing.get(tables);
  if (some === undefined) {
    some = tables.router.list().some((g) => g.logins !== undefined);
    capturing.set(tables, some);
  }
  if (!some) return undefined;
  const { runtime } = conn;
  const book = conn.issuing.captures;
  return {
    // A key keyway never issued is text like any other; one it holds, for any grant or agent, is refused.
    holds: (text) => mayHoldPlaceholder(text) && findPlaceholders(text).some((key) => book.find(key) !== undefined),
    limit: runtime.config.proxy.max_body_swap,
    hold: (bytes) => runtime.load.hold(share, bytes),
    release: (bytes) => runtime.load.release(share, bytes),
  };
}
