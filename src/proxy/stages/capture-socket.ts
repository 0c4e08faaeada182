import { findPlaceholders, mayHoldPlaceholder } from '../../capture/core/placeholder.ts';
import type { ProxyTables } from '../../credentials/tables.ts';
import { ProxyError } from '../../errors/index.ts';
import type { Connection } from '../connection.ts';
import { POLICY_VIOLATION } from '../websocket-frames/close-codes.ts';
import { WebSocketProtocolError } from '../websocket-frames/frame-reader.ts';
import type { OpenSocket, SocketTap } from './hooks.ts';
import type { StagedRequest } from './request.ts';
import { ClientPlaceholderCheck, type PlaceholderCheckOptions } from './socket-readers/client-placeholders.ts';

/**
 * Login capture on a WebSocket. A login host's socket is refused at its handshake (a throw:
 * capture_unreadable). While some grant captures logins, the agent's messages are searched for
 * captured tokens' placeholders as they go upstream (socket-readers/client-placeholders.ts): a
 * message holding one keyway holds is refused, nothing of it sent on, and the socket closed (1008,
 * placeholder_refused). It reads the frames, so none may be compressed.
 */
export const captureSocket: SocketTap = {
  name: 'capture-socket',
  open(request) {
    // A login host's answers are read whole and judged (stage capture-answer): a WebSocket there
    // cannot be, and a server that ignores the upgrade answers a plain GET the judge never sees.
    if (request.login?.captureHost) {
      throw new ProxyError(
        'capture_unreadable',
        `${request.login.where} is a login host of grant "${request.login.grant.id}": keyway reads its answers whole, and a WebSocket cannot be`,
        {
          grant: request.login.grant.id,
          hint: 'a login host is reached with plain requests only',
        },
      );
    }
    const check = placeholderCheck(request.conn);
    if (check === undefined) return undefined;
    return { reads: true, start: (socket) => ({ toUpstream: searched(request, socket, check) }) };
  },
};

/** What the search is given but the agent's memory, known only once the socket is open. */
type PlaceholderSearch = Omit<PlaceholderCheckOptions, 'hold' | 'release'>;

const capturing = new WeakMap<ProxyTables, boolean>();

/**
 * The search for captured tokens' placeholders in the agent's messages (client-placeholders.ts),
 * while some grant captures logins (found once per table build); undefined otherwise, when no
 * placeholder can be held and messages pass as they come.
 */
function placeholderCheck(conn: Connection): PlaceholderSearch | undefined {
  const tables = conn.decisions.tables();
  let some = capturing.get(tables);
  if (some === undefined) {
    some = tables.router.list().some((g) => g.logins !== undefined);
    capturing.set(tables, some);
  }
  if (!some) return undefined;
  const book = conn.issuing.captures;
  return {
    // A key keyway never issued is text like any other; one it holds, for any grant or agent, is refused.
    holds: (text) => mayHoldPlaceholder(text) && findPlaceholders(text).some((key) => book.find(key) !== undefined),
    limit: conn.decisions.config.proxy.max_body_swap,
  };
}

/** The agent's messages searched on their way up: one holding a placeholder keyway holds closes the socket. */
function searched(request: StagedRequest, socket: OpenSocket, check: PlaceholderSearch): ClientPlaceholderCheck {
  const { draft } = request;
  // A captured token's placeholder in a message: refused, nothing of the message sent on.
  const search = new ClientPlaceholderCheck({ ...check, hold: (bytes) => socket.memory.hold(bytes), release: (bytes) => socket.memory.release(bytes) });
  search.once('refuse', () => {
    draft.failed(
      new ProxyError('placeholder_refused', "a captured token's placeholder in a WebSocket message: placeholders resolve only where a credential goes", {
        hint: "send it in the handshake's Authorization header, never in a message",
      }),
    );
    socket.closeWith(POLICY_VIOLATION, 'keyway: placeholder refused');
  });
  search.once('error', (err: Error) => {
    const message = err instanceof WebSocketProtocolError ? err.message : 'the frames could not be read';
    draft.failed(new ProxyError('bad_request', `WebSocket closed by keyway: ${message}`));
    socket.destroy();
  });
  return search;
}
