import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TimeoutsConfig } from '../../config/index.ts';
import { ProxyError } from '../../errors/index.ts';
import { http } from '../../net/node-http.ts';
import { AnswersOwed } from '../http1/answers-owed.ts';
import { AuthThrottle } from '../identify/throttle.ts';
import { handleConnect } from './connect.ts';
import type { ProxyWiring } from './wiring.ts';
import { ClientConnections } from '../client-connections.ts';
import { sweepConnections } from './connection-sweep.ts';
import { createInnerServers } from './inner.ts';
import { refuseChunkedUpgrade, refuseExpectation, refuseMalformed, serveRequests } from '../http1/parser-quirks.ts';
import { handlePlainRequest } from './plain-request.ts';
import { clientAddress, draftOn, refuse } from '../refuse.ts';
import type { ProxyRuntime } from '../runtime.ts';
import { enforceBodyStall, httpServerOptions, retimeServer } from './timeouts.ts';
import { type RedirectedPort, redirectedServer, transparentHttpServer, transparentTlsServer } from '../transparent/listener.ts';

export interface ProxyServer {
  /** The listener agents connect to (HTTP/1.1: CONNECT and absolute-form). */
  readonly listener: Server;
  /** proxy.transparent's listeners, when configured: redirected TLS (by SNI) and plain HTTP (by Host). */
  readonly transparent: { readonly tls: NetServer | undefined; readonly http: NetServer | undefined };
  /** Client connections open now (listener's, CONNECTs, tunnels), for tests and status. */
  connectionCount(): number;
  /**
   * Serves redirected connections on a listening socket opened elsewhere (keyway run --contain:
   * inside the contained command's network namespace), as `agent`, audited `via: contain`: those
   * of one port, or of every port without a listener of its own.
   */
  acceptRedirected(handle: NetServer, agent: string | undefined, ports: RedirectedPort): NetServer;
  /** After a config reload: proxy.timeouts for the connections and requests that come next. */
  retime(timeouts: TimeoutsConfig): void;
  /**
   * Stops accepting, lets requests in flight finish for up to `drainMs` (0: none), closes
   * everything else (idle connections, CONNECTs still waiting, quiet tunnels), then the rest.
   * Later calls return the first call's promise.
   */
  close(drainMs?: number): Promise<void>;
}

/**
 * Wires the listener: CONNECT goes to connect.ts (identify, route, then intercept, tunnel or
 * refuse), an absolute-form http:// request to plain-request.ts. Requests inside intercepted
 * connections arrive on the inner servers (inner.ts), which never listen on a port.
 */
export function createProxyServer(runtime: ProxyRuntime): ProxyServer {
  const timeouts = runtime.config.proxy.timeouts;
  const connections = new ClientConnections();
  const owed = new AnswersOwed();
  const inner = createInnerServers(runtime, owed, timeouts);
  const wiring: ProxyWiring = { runtime, inner, connections, auth: new AuthThrottle() };
  const stopSweep = sweepConnections(runtime, connections);

  const listener = http.createServer({ ...httpServerOptions(timeouts), requireHostHeader: false });
  connections.attach(listener, inner.http1Server);
  enforceBodyStall(listener, timeouts, connections);
  enforceBodyStall(inner.http1Server, timeouts, connections);
  listener.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => handleConnect(wiring, req, socket, head));
  serveRequests(listener, owed, (req: IncomingMessage, res: ServerResponse) => {
    if (!refuseChunkedUpgrade(runtime, req, res, undefined)) void handlePlainRequest(wiring, req, res);
  });
  listener.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    owed.add(req.socket, req, res);
    refuseExpectation(runtime, req, res, undefined);
  });
  listener.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    const draft = draftOn(undefined, req.method ?? null, clientAddress(req.socket));
    const error = new ProxyError('bad_request', 'WebSocket over plain HTTP is not proxied; use wss://');
    void owed.settled(socket).then(() => refuse(runtime, draft, error, socket));
  });
  listener.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => refuseMalformed(runtime, owed, err, socket, undefined));

  const redirected = runtime.config.proxy.transparent;
  const options = { agent: redirected?.agent, via: 'transparent' as const };
  const transparent = {
    tls: redirected?.listen ? transparentTlsServer(wiring, options) : undefined,
    http: redirected?.http_listen ? transparentHttpServer(wiring, options) : undefined,
  };

  const redirectedServers: NetServer[] = [];

  let closing: Promise<void> | undefined;
  return {
    listener,
    transparent,
    acceptRedirected(handle, agent, ports) {
      const server = redirectedServer(wiring, { agent, via: 'contain' }, handle, ports);
      redirectedServers.push(server);
      return server;
    },
    connectionCount: () => connections.size,
    retime(t) {
      retimeServer(listener, t);
      inner.retime(t);
    },
    close(drainMs = 0) {
      closing ??= (async () => {
        stopSweep();
        // The port is free once the handle is closed; net.Server's own 'close' would wait for
        // every connection, which the drain takes care of.
        if (listener.listening) listener.close();
        for (const server of [transparent.tls, transparent.http, ...redirectedServers]) if (server?.listening) server.close();
        await connections.drain(drainMs);
        inner.closeAll();
      })();
      return closing;
    },
  };
}
