import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';

// Every client connection keyway holds, from accept to close, so that stop can drain them: HTTP
// connections (the listener's own and those inside intercepted CONNECTs) finish the request in
// flight and close; CONNECTs still waiting for a first byte or a handshake close at once; blind
// tunnels close once quiet. Node's own server.close() cannot do this: a CONNECT socket leaves the
// HTTP server's books but still counts for net.Server, so close() waited on it forever.

/** What a connection is doing, which decides what a drain does to it. */
type Phase = 'http' | 'http2' | 'pending' | 'tunnel';

interface Tracked {
  readonly raw: Duplex;
  phase: Phase;
  /** The socket the HTTP server reads (a TLSSocket over `raw` when intercepted). */
  http: Duplex;
  /** Requests whose response has not closed yet. */
  inFlight: number;
  latest: { req: IncomingMessage; res: ServerResponse } | undefined;
  /** For a tunnel: make it close once quiet. For HTTP/2: GOAWAY, and close once its streams are done. */
  onDrain?: (() => void) | undefined;
  /** For HTTP/2: end the session now (its socket closes with it). */
  destroySession?: (() => void) | undefined;
  /** Who the connection speaks for, once identified: swept when that no longer holds. */
  speaksFor?: Standing | undefined;
}

/** A connection's sign-in, as the sweep asks it (connection.ts). */
export interface Standing {
  endReason(now: number): string | undefined;
}

/** How quiet a blind tunnel must be, once stop has begun, before it is closed. */
const TUNNEL_DRAIN_QUIET_MS = 1_000;

export class ClientConnections {
  readonly #byRaw = new Map<Duplex, Tracked>();
  readonly #byHttp = new WeakMap<Duplex, Tracked>();
  #draining = false;
  #drained: (() => void) | undefined;

  /** Tracks the listener's connections and the requests of both HTTP servers. */
  attach(listener: Server, inner: Server): void {
    listener.on('connection', (socket: Socket) => this.#track(socket));
    for (const server of [listener, inner]) {
      // Prepended: the request is on the books before any handler can finish it.
      server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => this.#requestStarted(req, res));
    }
  }

  /** Tracks the connections of a listener that is not an HTTP server (the transparent ones). */
  attachRaw(listener: NetServer): void {
    listener.on('connection', (socket: Socket) => this.#track(socket));
  }

  get size(): number {
    return this.#byRaw.size;
  }

  /** The requests in flight and the latest one on the connection an HTTP server reads. */
  exchangeOn(httpSocket: Duplex): { inFlight: number; latest: Tracked['latest'] } {
    const tracked = this.#byHttp.get(httpSocket);
    return { inFlight: tracked?.inFlight ?? 0, latest: tracked?.latest };
  }

  /** A CONNECT answered and waiting for its first byte (or its TLS handshake): nothing in flight. */
  pending(raw: Duplex): void {
    const tracked = this.#byRaw.get(raw);
    if (!tracked) return;
    tracked.phase = 'pending';
    if (this.#draining) raw.destroy();
  }

  /** The CONNECT's bytes now go to the inner HTTP server as `httpSocket` (TLS, or `raw` itself). */
  handedOff(raw: Duplex, httpSocket: Duplex): void {
    const tracked = this.#byRaw.get(raw);
    if (!tracked) return;
    tracked.phase = 'http';
    tracked.http = httpSocket;
    this.#byHttp.set(httpSocket, tracked);
  }

  /**
   * An HTTP/2 session (whose streams the HTTP/1.1 books do not see): when stop begins, it sends
   * GOAWAY and lets its streams finish; the drain deadline destroys it.
   */
  http2(raw: Duplex, session: { close(): void; destroy(): void }): void {
    const tracked = this.#byRaw.get(raw);
    if (!tracked) return;
    tracked.phase = 'http2';
    const closeGracefully = () => session.close();
    tracked.onDrain = closeGracefully;
    tracked.destroySession = () => session.destroy();
    if (this.#draining) closeGracefully();
  }

  /** A blind tunnel; `closeWhenQuiet` shortens its idle timeout when stop begins. */
  tunnel(raw: Duplex, closeWhenQuiet: (quietMs: number) => void): void {
    const tracked = this.#byRaw.get(raw);
    if (!tracked) return;
    tracked.phase = 'tunnel';
    tracked.onDrain = () => closeWhenQuiet(TUNNEL_DRAIN_QUIET_MS);
    if (this.#draining) tracked.onDrain();
  }

  /** The CONNECT (or redirected connection) on `raw` was identified as `standing`. */
  identified(raw: Duplex, standing: Standing): void {
    const tracked = this.#byRaw.get(raw);
    if (tracked) tracked.speaksFor = standing;
  }

  /**
   * Closes every connection that no longer speaks for its agent (removed, key rotated, identity
   * unmapped) or is past its age: whatever it is doing (a keep-alive, a blind tunnel, a WebSocket,
   * HTTP/2 streams), so that revoking reaches open connections too. `ended` is told of each.
   */
  sweep(now: number, ended: (standing: Standing, reason: string) => void): void {
    for (const tracked of [...this.#byRaw.values()]) {
      const reason = tracked.speaksFor?.endReason(now);
      if (reason === undefined) continue;
      ended(tracked.speaksFor!, reason);
      tracked.speaksFor = undefined;
      destroy(tracked);
    }
  }

  /**
   * Stop: every connection finishes what it is doing, then closes; after `deadlineMs` whatever is
   * left is destroyed. Resolves once no connection is left.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.#draining = true;
    for (const tracked of [...this.#byRaw.values()]) this.#drainOne(tracked);
    if (this.#byRaw.size > 0) {
      const timer = setTimeout(() => {
        for (const tracked of [...this.#byRaw.values()]) destroy(tracked);
      }, deadlineMs);
      await new Promise<void>((resolve) => (this.#drained = resolve));
      clearTimeout(timer);
    }
  }

  #track(raw: Duplex): void {
    const tracked: Tracked = { raw, phase: 'http', http: raw, inFlight: 0, latest: undefined };
    this.#byRaw.set(raw, tracked);
    this.#byHttp.set(raw, tracked);
    raw.once('close', () => {
      this.#byRaw.delete(raw);
      if (this.#draining && this.#byRaw.size === 0) this.#drained?.();
    });
    if (this.#draining) raw.destroy();
  }

  #requestStarted(req: IncomingMessage, res: ServerResponse): void {
    const tracked = this.#byHttp.get(req.socket);
    if (!tracked) return;
    tracked.inFlight++;
    tracked.latest = { req, res };
    if (this.#draining) res.setHeader('connection', 'close');
    // 'on': a response closes once, and once's wrapper costs per request.
    res.on('close', () => {
      tracked.inFlight--;
      if (tracked.latest?.res === res) tracked.latest = undefined;
      if (this.#draining && tracked.inFlight === 0) closeGently(tracked);
    });
  }

  #drainOne(tracked: Tracked): void {
    if (tracked.phase === 'pending') return destroy(tracked);
    if (tracked.phase === 'tunnel' || tracked.phase === 'http2') return tracked.onDrain?.();
    if (tracked.inFlight === 0) return destroy(tracked);
    // A response not begun yet tells the client not to send another request on this connection.
    if (tracked.latest && !tracked.latest.res.headersSent) tracked.latest.res.setHeader('connection', 'close');
  }
}

function destroy(tracked: Tracked): void {
  // Destroyed underneath an HTTP/2 session, the sockets never emitted 'close' (the session holds them).
  tracked.destroySession?.();
  tracked.http.destroy();
  tracked.raw.destroy();
}

/** After the last response of a drain: let its bytes go out, then close. */
function closeGently(tracked: Tracked): void {
  // A client that never reads what is left would hold the socket: the drain deadline ends it.
  if (tracked.http.writableFinished) return destroy(tracked);
  tracked.http.once('finish', () => destroy(tracked));
  tracked.http.end();
}
