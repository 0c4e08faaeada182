import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { http } from '../net/node-http.ts';
import type { Duplex } from 'node:stream';
import { ProxyError } from '../errors/index.ts';
import { AuditDraft } from './audit-event.ts';
import { handleExchange, prepareOutgoing, type ExchangeContext } from './exchange.ts';
import { answerSelfCheck } from './self-check.ts';
import { checkDestination, routeConnect } from './route-connect.ts';
import { AuthThrottle } from './auth-throttle.ts';
import { intercept, type InnerServers } from './intercept.ts';
import { createHttp2Inner } from './http2-server.ts';
import { refusedHttp2Request } from './http2-request.ts';
import { asProxyError, sendError, sendErrorOnSocket } from './respond.ts';
import type { ProxyRuntime } from './runtime.ts';
import { parseAbsoluteUrl } from './target.ts';
import type { Agent } from '../credentials/agents.ts';
import type { TimeoutsConfig } from '../config/index.ts';
import { openTunnel } from './tunnel.ts';
import { AnswersOwed, isWebSocketHandshake, WebSocketForwarder } from './websocket.ts';
import { secretNeedles } from './leak-guard.ts';
import { ClientConnections } from './connections.ts';
import { answerError, answerRefused, answerRefusedUpgrade, auditIfUnanswered, RefusedInside } from './refuse-inside.ts';
import { enforceBodyStall, httpServerOptions, retimeServer } from './timeouts.ts';
import { refuseChunkedUpgrade, refuseExpectation, serveRequests } from './parser-quirks.ts';

export interface ProxyServer {
  /** The listener agents connect to (HTTP/1.1: CONNECT and absolute-form). */
  readonly listener: Server;
  /** Client connections open now (listener's, CONNECTs, tunnels), for tests and status. */
  connectionCount(): number;
  /** After a config reload: proxy.timeouts for the connections and requests that come next. */
  retime(timeouts: TimeoutsConfig): void;
  /**
   * Stops accepting, lets requests in flight finish for up to `drainMs` (0: none), closes
   * everything else (idle connections, CONNECTs still waiting, quiet tunnels), then the rest.
   * Later calls return the first call's promise.
   */
  close(drainMs?: number): Promise<void>;
}

const clientAddress = (socket: { remoteAddress?: string | undefined }) => socket.remoteAddress ?? 'unknown';

/**
 * Wires the listener. CONNECT: identify -> route -> intercept or tunnel (or refuse). Absolute-form
 * http:// requests: identify -> exchange. Requests inside intercepted connections arrive on the
 * inner server, which never listens on a port: sockets are handed to it after TLS termination.
 */
export function createProxyServer(runtime: ProxyRuntime): ProxyServer {
  const contexts = new WeakMap<object, ExchangeContext>();
  const websockets = new WebSocketForwarder();
  const timeouts = runtime.config.proxy.timeouts;
  const connections = new ClientConnections();
  const owed = new AnswersOwed();
  // Proxy authentication failures per client address: 429 after a few in a row (auth-throttle.ts).
  const auth = new AuthThrottle();

  // exchange.ts checks Host itself, with an audit line. shouldUpgradeCallback: only a WebSocket
  // handshake takes the upgrade path; any other request with upgrade headers is an ordinary one.
  const inner = http.createServer({ ...httpServerOptions(timeouts), requireHostHeader: false, shouldUpgradeCallback: isWebSocketHandshake });
  // The inner server never listens (sockets are handed to it), and Node only checks head
  // deadlines (headersTimeout) and tracks connections on a server that emitted 'listening'.
  inner.emit('listening');
  const innerRequest = (req: IncomingMessage, res: ServerResponse) => {
    const ctx = contexts.get(req.socket);
    if (refuseChunkedUpgrade(runtime, req, res, ctx)) return;
    if (ctx?.refused) answerRefused(runtime, req, res, ctx, ctx.refused);
    else if (ctx?.selfCheck) answerSelfCheck(runtime, req, res, ctx);
    else if (ctx) void handleExchange(runtime, req, res, ctx, req.url ?? '/');
    else sendError(res, new ProxyError('internal_error', 'lost connection context'));
  };
  serveRequests(inner, owed, innerRequest);
  inner.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const ctx = contexts.get(req.socket);
    if (ctx?.refused) {
      const refused = ctx.refused;
      void owed.settled(socket).then(() => answerRefusedUpgrade(runtime, req, socket, ctx, refused));
    } else if (ctx) void owed.settled(socket).then(() => handleUpgrade(runtime, websockets, req, socket, head, ctx));
    else socket.destroy();
  });
  // Node answers an Expect other than 100-continue with a bare 417 itself, unaudited.
  inner.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    owed.add(req.socket, req, res);
    refuseExpectation(runtime, req, res, contexts.get(req.socket));
  });
  inner.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => refuseMalformed(runtime, owed, err, socket, contexts.get(socket)));

  // HTTP/2 streams: the same dispatch. A CONNECT or an Expect other than 100-continue (node:http2
  // would answer both itself, unaudited) is refused with an audit line.
  const http2 = createHttp2Inner(timeouts, (req, res, ctx) => {
    const refused = refusedHttp2Request(req);
    if (!ctx) sendError(res, new ProxyError('internal_error', 'lost connection context'));
    else if (ctx.refused) answerRefused(runtime, req, res, ctx, ctx.refused);
    else if (refused) answerError(runtime, req, res, ctx, refused);
    else if (ctx.selfCheck) answerSelfCheck(runtime, req, res, ctx);
    else void handleExchange(runtime, req, res, ctx, req.url ?? '/');
  });
  const servers: InnerServers = { http1: inner, http2 };

  const listener = http.createServer({ ...httpServerOptions(timeouts), requireHostHeader: false });
  connections.attach(listener, inner);
  enforceBodyStall(listener, timeouts, connections);
  enforceBodyStall(inner, timeouts, connections);
  listener.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    handleConnect(runtime, servers, contexts, connections, auth, req, socket, head),
  );
  const plainRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (!refuseChunkedUpgrade(runtime, req, res, undefined)) void handlePlainRequest(runtime, auth, req, res);
  };
  serveRequests(listener, owed, plainRequest);
  listener.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    owed.add(req.socket, req, res);
    refuseExpectation(runtime, req, res, undefined);
  });
  listener.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    const error = new ProxyError('bad_request', 'WebSocket over plain HTTP is not proxied; use wss://');
    const draft = new AuditDraft({ method: req.method ?? null, host: '', port: 0, client: clientAddress(req.socket) });
    draft.failed(error);
    void owed.settled(socket).then(() => {
      draft.commit(runtime);
      sendErrorOnSocket(socket, error);
    });
  });
  listener.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => refuseMalformed(runtime, owed, err, socket, undefined));

  let closing: Promise<void> | undefined;
  return {
    listener,
    connectionCount: () => connections.size,
    retime(t) {
      retimeServer(listener, t);
      retimeServer(inner, t);
      http2.retime(t);
    },
    close(drainMs = 0) {
      closing ??= (async () => {
        // The port is free once the handle is closed; net.Server's own 'close' would wait for
        // every connection, which the drain takes care of.
        if (listener.listening) listener.close();
        await connections.drain(drainMs);
        inner.closeAllConnections();
        http2.closeAll();
        inner.close(); // ends its head-deadline timer (it never listened: nothing else to close)
      })();
      return closing;
    },
  };
}

function handleConnect(
  runtime: ProxyRuntime,
  inner: InnerServers,
  contexts: WeakMap<object, ExchangeContext>,
  connections: ClientConnections,
  auth: AuthThrottle,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): void {
  socket.on('error', () => socket.destroy());
  // The HTTP server's timers no longer apply: first_byte, handshake or the tunnel's idle do.
  (socket as Duplex & { setTimeout(ms: number): void }).setTimeout(0);
  connections.pending(socket);
  const client = clientAddress(req.socket);
  const draft = new AuditDraft({ method: 'CONNECT', host: '', port: 0, client });
  routeConnect(runtime, req, draft, auth).then(
    ({ route, agent, target, refusal }) => {
      if (route === 'intercept') runtime.upstream.prewarm(target.host, target.port);
      if (route === 'refuse-inside' && refusal) {
        // Refused inside TLS, where clients show the body; nothing goes upstream (refuse-inside.ts).
        const refused = new RefusedInside(refusal);
        auditIfUnanswered(runtime, socket, draft, refused);
        intercept(runtime, inner, contexts, connections, socket, head, { agent, target, client, refused });
      } else if (route === 'intercept' || route === 'self-check') {
        // One audit line per request inside, none for the CONNECT itself.
        intercept(runtime, inner, contexts, connections, socket, head, { agent, target, client, selfCheck: route === 'self-check' });
      } else {
        void openTunnel(runtime, socket, head, target, draft, connections);
      }
    },
    (err: unknown) => {
      const error = asProxyError(err);
      draft.failed(error);
      draft.commit(runtime);
      sendErrorOnSocket(socket, error);
    },
  );
}

async function handlePlainRequest(runtime: ProxyRuntime, auth: AuthThrottle, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let parsed: ReturnType<typeof parseAbsoluteUrl> | undefined;
  let agent: Agent | undefined;
  try {
    parsed = parseAbsoluteUrl(req.url ?? '');
    if (parsed.scheme === 'https') throw new ProxyError('bad_request', 'send https:// through CONNECT (set HTTPS_PROXY)');
    agent = auth.identify(req, runtime.tables().agents, clientAddress(req.socket), runtime.callerKey);
    await checkDestination(runtime, parsed.target);
  } catch (err) {
    const error = asProxyError(err);
    // Whatever was known when the refusal came: the target (never its query) and the agent.
    const draft = new AuditDraft({
      method: req.method ?? null,
      host: parsed?.target.host ?? '',
      port: parsed?.target.port ?? 0,
      client: clientAddress(req.socket),
      agent: agent?.id ?? null,
    });
    draft.failed(error);
    draft.commit(runtime);
    // Throttled: one answer per connection, so each further try costs the client a new one.
    if (error.code === 'rate_limited') res.shouldKeepAlive = false;
    return sendError(res, error);
  }
  await handleExchange(runtime, req, res, { agent, target: parsed.target, scheme: 'http', client: clientAddress(req.socket) }, parsed.path);
}

/** A WebSocket handshake (only those: see isWebSocketHandshake): the same stages as any request, then the upgrade. */
async function handleUpgrade(
  runtime: ProxyRuntime,
  websockets: WebSocketForwarder,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  ctx: ExchangeContext,
): Promise<void> {
  // The path is set once normalised: the audit names the path sent, never the raw one.
  const draft = new AuditDraft({
    method: req.method ?? 'GET',
    host: ctx.target.host,
    port: ctx.target.port,
    client: ctx.client,
    agent: ctx.agent.id,
    path: null,
  });
  if (socket.destroyed || socket.writableEnded) {
    // Closed while the answers ahead were written (by the agent, or by an answer ahead that ended
    // the connection): nothing was sent upstream.
    draft.event.code = 'client_closed';
    draft.commit(runtime);
    return;
  }
  try {
    // An open WebSocket holds a slot of its agent's requests in flight until its connection closes
    // (proxy.max_in_flight_per_agent): otherwise an agent could hold any number of them open.
    const share = runtime.load.admit(ctx.agent.id);
    socket.once('close', () => runtime.load.leave(share));
    const { issued, outgoing } = await prepareOutgoing(runtime, req, ctx, req.url ?? '/', draft);
    const redact = issued && {
      needles: secretNeedles(issued.credential),
      onRedacted: (count: number) => (draft.event.leak_redacted = (draft.event.leak_redacted ?? 0) + count),
    };
    websockets.forward(runtime, socket, head, ctx, outgoing, draft, redact);
  } catch (err) {
    const error = asProxyError(err);
    draft.failed(error);
    draft.commit(runtime);
    sendErrorOnSocket(socket, error);
  }
}

/**
 * The HTTP parser refused what the client sent: answer 400 and still write one audit line. The
 * answer waits for those still owed to requests pipelined ahead and read whole: written at once,
 * it would cut into them (and end the connection before they are sent). A request cut inside its
 * body is the one refused: answered at once, as its answer can never finish.
 */
function refuseMalformed(runtime: ProxyRuntime, owed: AnswersOwed, err: NodeJS.ErrnoException, socket: Duplex, ctx: ExchangeContext | undefined): void {
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
  const draft = new AuditDraft({
    method: null,
    host: ctx?.target.host ?? '',
    port: ctx?.target.port ?? 0,
    client: ctx?.client ?? clientAddress(socket as Duplex & { remoteAddress?: string }),
    agent: ctx?.agent.id ?? null,
  });
  draft.failed(error);
  const refuse = () => {
    draft.commit(runtime);
    sendErrorOnSocket(socket, error);
  };
  if (owed.allRead(socket)) void owed.settled(socket).then(refuse);
  else refuse();
}

const refusedMalformed = new WeakSet<object>();
