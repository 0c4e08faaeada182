import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { http } from '../net/node-http.ts';
import type { Duplex } from 'node:stream';
import { ProxyError } from '../errors/index.ts';
import { stripQuery } from '../audit/index.ts';
import { AuditDraft } from './audit-event.ts';
import { handleExchange, prepareOutgoing, type ExchangeContext } from './exchange.ts';
import { answerSelfCheck, SELF_CHECK_HOST } from './self-check.ts';
import { identifyAgent } from './identify.ts';
import { intercept } from './intercept.ts';
import { asProxyError, sendError, sendErrorOnSocket } from './respond.ts';
import type { ProxyRuntime } from './runtime.ts';
import { formatAuthority, parseAbsoluteUrl, parseAuthority, type Target } from './target.ts';
import { isLocalAddress } from './local-addresses.ts';
import { patternMatches } from '../policy/domains.ts';
import type { Agent } from '../credentials/agents.ts';
import { isIP } from 'node:net';
import { openTunnel } from './tunnel.ts';
import { WebSocketForwarder } from './websocket.ts';

export interface ProxyServer {
  /** The listener agents connect to (HTTP/1.1: CONNECT and absolute-form). */
  readonly listener: Server;
  close(): Promise<void>;
}

const clientAddress = (socket: { remoteAddress?: string | undefined }) => socket.remoteAddress ?? 'unknown';

/**
 * Wires the listener. CONNECT: identify -> route -> intercept or tunnel (or refuse). Absolute-form
 * http:// requests: identify -> exchange. Requests inside intercepted connections arrive on the
 * inner server, which never listens on a port: sockets are handed to it after TLS termination.
 */
export function createProxyServer(runtime: ProxyRuntime): ProxyServer {
  const contexts = new WeakMap<object, ExchangeContext>();
  const websockets = new WebSocketForwarder(runtime);

  const inner = http.createServer({ requestTimeout: 0, keepAliveTimeout: 30_000 });
  inner.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const ctx = contexts.get(req.socket);
    if (ctx?.selfCheck) answerSelfCheck(runtime, req, res, ctx);
    else if (ctx) void handleExchange(runtime, req, res, ctx, originPath(req));
    else sendError(res, new ProxyError('internal_error', 'lost connection context'));
  });
  inner.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const ctx = contexts.get(req.socket);
    if (ctx) void handleUpgrade(runtime, websockets, req, socket, head, ctx);
    else socket.destroy();
  });
  inner.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => refuseMalformed(runtime, err, socket, contexts.get(socket)));

  const listener = http.createServer({ requestTimeout: 0, keepAliveTimeout: 30_000 });
  listener.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => handleConnect(runtime, inner, contexts, req, socket, head));
  listener.on('request', (req: IncomingMessage, res: ServerResponse) => void handlePlainRequest(runtime, req, res));
  listener.on('upgrade', (_req: IncomingMessage, socket: Duplex) =>
    sendErrorOnSocket(socket, new ProxyError('bad_request', 'WebSocket over plain HTTP is not proxied; use wss://')),
  );
  listener.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => refuseMalformed(runtime, err, socket, undefined));

  return {
    listener,
    async close() {
      await new Promise<void>((resolve) => {
        listener.close(() => resolve());
        listener.closeAllConnections();
        inner.closeAllConnections();
      });
    },
  };
}

function handleConnect(runtime: ProxyRuntime, inner: Server, contexts: WeakMap<object, ExchangeContext>, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.on('error', () => socket.destroy());
  const client = clientAddress(req.socket);
  const draft = new AuditDraft({ method: 'CONNECT', host: '', port: 0, client });
  routeConnect(runtime, req, draft).then(
    ({ route, agent, target }) => {
      if (route === 'intercept') runtime.upstream.prewarm(target.host, target.port);
      if (route === 'intercept' || route === 'self-check') {
        // One audit line per request inside, none for the CONNECT itself.
        intercept(runtime, inner, contexts, socket, head, { agent, target, client, selfCheck: route === 'self-check' });
      } else {
        void openTunnel(runtime, socket, head, target, draft);
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

/** CONNECT stages: parse the target -> identify -> route -> check the destination. */
async function routeConnect(runtime: ProxyRuntime, req: IncomingMessage, draft: AuditDraft): Promise<{ route: 'intercept' | 'tunnel' | 'self-check'; agent: Agent; target: Target }> {
  const target = parseAuthority(req.url ?? '');
  draft.event.host = target.host;
  draft.event.port = target.port;
  const { router, agents } = runtime.tables();
  const agent = identifyAgent(req, agents);
  draft.event.agent = agent.id;
  // keyway answers this name itself (keyway doctor): never resolved, never forwarded.
  if (target.host === SELF_CHECK_HOST && target.port === 443) return { route: 'self-check', agent, target };
  const route = router.decide(agent, target.host, target.port);
  if (route.kind === 'refuse') throw route.error;
  if (route.kind === 'unmatched') {
    const allowTunnel = runtime.config.proxy.allow_tunnel;
    if (runtime.config.proxy.unmatched === 'deny' && !allowTunnel.some((p) => patternMatches(p, target.host, target.port))) {
      throw new ProxyError('host_not_allowed', `no grant covers ${target.host} and proxy.unmatched is deny`, {
        hint: 'add the host to proxy.allow_tunnel to let it through untouched',
      });
    }
    if (!runtime.audit.healthy) {
      throw new ProxyError('audit_unavailable', 'the audit log cannot be written; nothing is sent until it can');
    }
  }
  await checkDestination(runtime, target);
  return { route: route.kind === 'intercept' ? 'intercept' : 'tunnel', agent, target };
}

/**
 * Stage: the destination itself. An IP literal is checked now (no lookup will happen for it); a
 * name is checked when its one lookup answers, at connect time. keyway's own ports on a local
 * address are refused whatever proxy.allow_networks says.
 */
async function checkDestination(runtime: ProxyRuntime, target: Target): Promise<void> {
  if (isIP(target.host) !== 0) await runtime.resolve(target.host);
  if (runtime.ownPorts.has(target.port)) {
    const { address } = await runtime.resolve(target.host);
    if (isLocalAddress(address)) throw new ProxyError('host_not_allowed', `${formatAuthority(target)} is keyway's own listener`);
  }
}

async function handlePlainRequest(runtime: ProxyRuntime, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let parsed: ReturnType<typeof parseAbsoluteUrl>;
  let agent;
  try {
    parsed = parseAbsoluteUrl(req.url ?? '');
    if (parsed.scheme === 'https') throw new ProxyError('bad_request', 'send https:// through CONNECT (set HTTPS_PROXY)');
    agent = identifyAgent(req, runtime.tables().agents);
    await checkDestination(runtime, parsed.target);
  } catch (err) {
    const error = asProxyError(err);
    const draft = new AuditDraft({ method: req.method ?? null, host: '', port: 0, client: clientAddress(req.socket) });
    draft.failed(error);
    draft.commit(runtime);
    return sendError(res, error);
  }
  await handleExchange(runtime, req, res, { agent, target: parsed.target, scheme: 'http', client: clientAddress(req.socket) }, parsed.path);
}

async function handleUpgrade(runtime: ProxyRuntime, websockets: WebSocketForwarder, req: IncomingMessage, socket: Duplex, head: Buffer, ctx: ExchangeContext): Promise<void> {
  const path = originPath(req);
  const draft = new AuditDraft({ method: req.method ?? 'GET', host: ctx.target.host, port: ctx.target.port, client: ctx.client, agent: ctx.agent.id, path: stripQuery(path) });
  try {
    const { grant, outgoing } = await prepareOutgoing(runtime, req, ctx, path, draft);
    websockets.forward(runtime, req, socket, head, ctx, grant, outgoing, draft);
  } catch (err) {
    const error = asProxyError(err);
    draft.failed(error);
    draft.commit(runtime);
    sendErrorOnSocket(socket, error);
  }
}

/** The HTTP parser refused what the client sent: answer 400 and still write one audit line. */
function refuseMalformed(runtime: ProxyRuntime, err: NodeJS.ErrnoException, socket: Duplex, ctx: ExchangeContext | undefined): void {
  if (socket.writableEnded) return; // refused already: one answer and one audit line per connection
  if (!err.code?.startsWith('HPE_')) {
    socket.destroy(); // a reset or timeout, not a request: nothing to answer or audit
    return;
  }
  const error = new ProxyError('bad_request', 'malformed HTTP request');
  const draft = new AuditDraft({
    method: null,
    host: ctx?.target.host ?? '',
    port: ctx?.target.port ?? 0,
    client: ctx?.client ?? clientAddress(socket as Duplex & { remoteAddress?: string }),
    agent: ctx?.agent.id ?? null,
  });
  draft.failed(error);
  draft.commit(runtime);
  sendErrorOnSocket(socket, error);
}

/** Requests inside a tunnel are origin-form; tolerate absolute-form by taking its path. */
function originPath(req: IncomingMessage): string {
  const url = req.url ?? '/';
  if (url.startsWith('/')) return url;
  try {
    const parsed = new URL(url);
    return `${parsed.pathname}${parsed.search}`;
  } catch {
    return '/';
  }
}
