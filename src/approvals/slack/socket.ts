import type { Logger } from 'pino';
import { isLoopbackAddress } from '../../config/loopback.ts';

// Socket Mode: Slack delivers the clicks over a WebSocket keyway opens itself, so no public URL is
// needed (a laptop behind NAT works). The URL comes from apps.connections.open (app-level token),
// is good for one connection, and is opened with undici's WebSocket (Node's own, at the version of
// keyway's HTTP client, given the token endpoints' dispatcher: egress.proxy, proxy.hosts and
// proxy.upstream_ca apply as to the Web API; no `ws`, no @slack/socket-mode:
// the protocol is `hello`, envelopes to acknowledge by id, and `disconnect`; a dependency would add
// its own reconnect loop and logging of envelopes, which carry the payloads).
// Each envelope is acknowledged at once (Slack redelivers one that is not, within seconds), then
// its payload handed over; the room answers each payload once, redelivered or not.
// Slack down or the socket closed: keyway reconnects with a growing pause (1 s to 30 s). Holds wait
// or expire as their rules say meanwhile: a click that never comes approves nothing.

export interface SocketModeOptions {
  /** apps.connections.open: a fresh wss:// URL. */
  open(): Promise<string>;
  onInteractive(payload: unknown, envelopeId: string): void;
  logger: Logger;
  /** Opens the WebSocket: through egress.proxy when set (index.ts); Node's global WebSocket when absent. */
  connect?: ((url: string) => WebSocket) | undefined;
}

export interface SocketMode {
  /** Connected and greeted (hello) now. */
  connected(): boolean;
  stop(): void;
}

const MIN_PAUSE_MS = 1_000;
const MAX_PAUSE_MS = 30_000;

/** Slack hands out wss:// URLs; a plain ws:// one is taken on loopback only (a stand-in). */
export function socketUrlAllowed(text: string): boolean {
  try {
    const url = new URL(text);
    if (url.protocol === 'wss:') return true;
    return url.protocol === 'ws:' && isLoopbackAddress(url.hostname);
  } catch {
    return false;
  }
}

export function startSocketMode(options: SocketModeOptions): SocketMode {
  let stopped = false;
  let greeted = false;
  let socket: WebSocket | undefined;
  let pause = MIN_PAUSE_MS;
  let timer: NodeJS.Timeout | undefined;

  const again = () => {
    greeted = false;
    socket = undefined;
    if (stopped) return;
    timer = setTimeout(() => void connect(), pause);
    timer.unref();
    pause = Math.min(pause * 2, MAX_PAUSE_MS);
  };

  const connect = async () => {
    if (stopped) return;
    let url: string;
    try {
      url = await options.open();
      if (!socketUrlAllowed(url)) throw new Error('apps.connections.open gave no wss:// URL');
    } catch (err) {
      options.logger.warn({ err: { message: (err as Error).message } }, 'Slack Socket Mode: could not open a connection; retrying');
      return again();
    }
    if (stopped) return;
    const ws = options.connect ? options.connect(url) : new WebSocket(url);
    socket = ws;
    ws.addEventListener('message', (event) => {
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(String(event.data)) as Record<string, unknown>;
      } catch {
        return;
      }
      if (message['type'] === 'hello') {
        greeted = true;
        pause = MIN_PAUSE_MS;
        options.logger.info('Slack Socket Mode connected');
        return;
      }
      if (message['type'] === 'disconnect') {
        ws.close();
        return;
      }
      const envelopeId = message['envelope_id'];
      if (typeof envelopeId !== 'string' || envelopeId.length > 200) return;
      ws.send(JSON.stringify({ envelope_id: envelopeId }));
      if (message['type'] === 'interactive') options.onInteractive(message['payload'], envelopeId);
    });
    ws.addEventListener('close', () => {
      if (socket === ws) again();
    });
    ws.addEventListener('error', () => {
      // close follows; the URL is never logged (it carries a ticket).
    });
  };

  void connect();
  return {
    connected: () => greeted,
    stop() {
      stopped = true;
      clearTimeout(timer);
      socket?.close();
    },
  };
}
