import { createServer, type Server, type Socket } from 'node:net';
import { ANONYMOUS_AGENT, type Agent } from '../../credentials/agents.ts';
import { ProxyError } from '../../errors/index.ts';
import { AuditDraft } from '../audit-event.ts';
import { routeConnection } from '../driver/connect.ts';
import type { ProxyWiring } from '../driver/wiring.ts';
import { Connection } from '../connection.ts';
import { intercept } from '../driver/intercept.ts';
import { clientAddress, refuse } from '../refuse.ts';
import { auditIfUnanswered } from '../refuse-inside.ts';
import { asProxyError } from '../respond.ts';
import type { Target } from '../target.ts';
import { refuseWithAlert } from '../tls-alert.ts';
import { openTunnel } from '../driver/tunnel.ts';
import { MAX_HELLO_RECORD, readClientHello } from './client-hello.ts';
import { completeHead, hostOfHead, MAX_HEAD } from './http-host.ts';
import { readPrefix } from './prefix.ts';

// Listeners for connections redirected to keyway (a pod's nftables rules, keyway run --contain)
// rather than sent to its proxy: no CONNECT, no proxy credentials. The TLS listener takes the
// destination from the ClientHello's server name (port 443), the HTTP one from the request's Host
// (port 80 unless it names one); the address the client dialled is never used (keyway resolves the
// name itself, under its egress checks). Then the connection goes exactly as a CONNECT to that name
// would: intercepted, refused inside TLS, tunnelled blind, or refused, with the same stages and audit
// lines, marked `via`. A connection with neither name is refused (no_destination) and audited.
// Where a CONNECT would get an answer on the CONNECT (a refused destination, a tunnel's host that
// cannot be reached), a TLS client gets a TLS alert (tls-alert.ts) and a plain one the HTTP answer.

export interface TransparentOptions {
  /** The agent such connections are (proxy.transparent.agent); undefined: the local agent, where no agents are configured. */
  readonly agent: string | undefined;
  readonly via: 'transparent' | 'contain';
}

/** What a listener handed over by keyway run --contain serves: one port, or every port it has no listener of its own for. */
export interface RedirectedPort {
  /** The port the connections were for; undefined: the catch-all for every other port. */
  readonly port: number | undefined;
  /** Every port with a listener of its own, for the catch-all's refusal. */
  readonly served: readonly number[];
  /** On the catch-all: the port a connection was dialled to, where it can be read (contain/original-port.ts), to say in its refusal. */
  readonly dialled?: (socket: Socket) => number | undefined;
}

/** A listener for redirected TLS: routed by SNI. */
export function transparentTlsServer(wiring: ProxyWiring, options: TransparentOptions): Server {
  const server = createServer({ pauseOnConnect: true }, (socket) => void acceptTls(wiring, options, socket));
  wiring.connections.attachRaw(server);
  return server;
}

/** A listener for redirected plain HTTP: routed by Host. */
export function transparentHttpServer(wiring: ProxyWiring, options: TransparentOptions): Server {
  const server = createServer({ pauseOnConnect: true }, (socket) => void acceptHttp(wiring, options, socket));
  wiring.connections.attachRaw(server);
  return server;
}

/**
 * A listener for redirected TCP connections of one port, or of every port without a listener of its
 * own (keyway run --contain: the namespace's rules pick the listener by the port dialled, since Node
 * cannot read the original destination). TLS is told by its first byte and routed by SNI to that
 * port; anything else is read as plain HTTP, routed by Host. On the catch-all the port is unknown:
 * TLS is refused there (the server name says nothing of the port), HTTP goes by the Host's port.
 * `handle` is a listening socket opened elsewhere (inside the contained process's network
 * namespace) and handed over.
 */
export function redirectedServer(wiring: ProxyWiring, options: TransparentOptions, handle: Server, ports: RedirectedPort): Server {
  const server = createServer({ pauseOnConnect: true }, (socket) => void acceptEither(wiring, options, socket, ports));
  wiring.connections.attachRaw(server);
  server.listen(handle);
  return server;
}

async function acceptEither(wiring: ProxyWiring, options: TransparentOptions, socket: Socket, ports: RedirectedPort): Promise<void> {
  socket.on('error', () => socket.destroy());
  socket.resume();
  const { bytes } = await readPrefix(socket, 1, wiring.runtime.config.proxy.timeouts.first_byte, (b) => (b.length > 0 ? true : undefined));
  if (bytes.length === 0) {
    // Nothing said (a protocol where the server speaks first, as SSH): no name to go by.
    const draft = start(wiring, socket, options, ports.port ?? 0);
    return closeRefused(
      wiring,
      draft,
      new ProxyError('no_destination', 'a redirected connection that sent nothing keyway can route by (neither TLS nor HTTP)'),
      socket,
    );
  }
  socket.unshift(bytes);
  return bytes[0] === TLS_HANDSHAKE ? acceptTls(wiring, options, socket, ports) : acceptHttp(wiring, options, socket, ports.port ?? 80);
}

const TLS_HANDSHAKE = 0x16;

const TLS_ON_443: RedirectedPort = { port: 443, served: [443] };

async function acceptTls(wiring: ProxyWiring, options: TransparentOptions, socket: Socket, ports = TLS_ON_443): Promise<void> {
  const { runtime } = wiring;
  const draft = start(wiring, socket, options, ports.port ?? 0);
  socket.resume();
  const { bytes, found } = await readPrefix(socket, MAX_HELLO_RECORD, runtime.config.proxy.timeouts.first_byte, (b) => {
    const reading = readClientHello(b);
    return reading.kind === 'more' ? undefined : reading;
  });
  if (socket.destroyed || found === undefined) return void gone(wiring, draft, socket);
  if (found.kind !== 'name') {
    const why = found.kind === 'no-name' ? 'a TLS ClientHello without a server name (SNI)' : found.reason;
    return closeRefused(wiring, draft, new ProxyError('no_destination', `${why}: keyway cannot tell where it goes`), socket);
  }
  if (ports.port === undefined) {
    draft.event.host = found.host;
    // The agent and the port, as a routed connection's line has them: the hint then names the port to add.
    const dialled = ports.dialled?.(socket);
    if (dialled !== undefined) draft.event.port = dialled;
    try {
      draft.event.agent = agentFor(wiring, options).id;
    } catch {
      // No agent to name (agents configured, none given): the line says so by having none.
    }
    const served = ports.served.join(', ');
    const why =
      dialled === undefined
        ? `TLS to ${found.host} on a port keyway was not told to serve (it serves ${served}; keyway run --contain --port N adds one)`
        : `TLS to ${found.host}:${dialled}, a port keyway was not told to serve (it serves ${served}; keyway run --contain --port ${dialled} adds it)`;
    return closeRefused(wiring, draft, new ProxyError('no_destination', why), socket);
  }
  await route(wiring, options, { host: found.host, port: ports.port }, draft, socket, bytes, false);
}

/** `port`: the one the listener serves, for a Host that names none. */
async function acceptHttp(wiring: ProxyWiring, options: TransparentOptions, socket: Socket, port = 80): Promise<void> {
  const { runtime } = wiring;
  const draft = start(wiring, socket, options, port);
  socket.resume();
  const { bytes, found } = await readPrefix(socket, MAX_HEAD, runtime.config.proxy.timeouts.headers, completeHead);
  if (socket.destroyed || found === undefined) {
    if (bytes.length >= MAX_HEAD) return refuse(runtime, draft, new ProxyError('bad_request', 'a request head over 16 KiB'), socket);
    return void gone(wiring, draft, socket);
  }
  let target: Target;
  try {
    target = hostOfHead(found, port);
  } catch (err) {
    return refuse(runtime, draft, asProxyError(err), socket);
  }
  await route(wiring, options, target, draft, socket, bytes, true);
}

/** The connection's line, before anything is known but the client. */
function start(wiring: ProxyWiring, socket: Socket, options: TransparentOptions, port: number): AuditDraft {
  socket.on('error', () => socket.destroy());
  wiring.connections.pending(socket);
  const draft = new AuditDraft({ method: null, host: '', port, client: clientAddress(socket) });
  draft.event.via = options.via;
  // The listener's agent, named on a refusal too (route() checks it exists before anything is reached).
  if (options.agent !== undefined) draft.event.agent = options.agent;
  return draft;
}

/** As a CONNECT to `target` would go, for the agent the listener serves. */
async function route(
  wiring: ProxyWiring,
  options: TransparentOptions,
  target: Target,
  draft: AuditDraft,
  socket: Socket,
  head: Buffer,
  http: boolean,
): Promise<void> {
  const { runtime } = wiring;
  draft.event.host = target.host;
  draft.event.port = target.port;
  let conn: Connection;
  try {
    const agent = agentFor(wiring, options);
    draft.event.agent = agent.id;
    conn = await routeConnection(runtime, new Connection(runtime, target, agent, draft.event.client, options.via));
  } catch (err) {
    // Plain HTTP can read a refusal; a TLS client, before its handshake, reads only a TLS record: an alert.
    if (http) return refuse(runtime, draft, asProxyError(err), socket);
    return refuseWithAlert(runtime, draft, asProxyError(err), socket);
  }
  const { route: decided } = conn;
  wiring.connections.identified(socket, conn);
  if (decided.kind === 'tunnel') return void openTunnel(wiring, conn, { socket, head, draft }, http ? 'http' : 'tls');
  if (decided.kind === 'intercept') runtime.upstream.prewarm(target.host, target.port);
  if (decided.kind === 'refuse-inside') auditIfUnanswered(runtime, socket, draft, decided.refusal);
  intercept(wiring, conn, socket, head, false);
}

/** The listener's agent: the one proxy.transparent.agent names, else the local agent where there are no agents. */
function agentFor({ runtime }: ProxyWiring, options: TransparentOptions): Agent {
  const agents = runtime.tables().agents;
  if (options.agent === undefined) {
    if (agents.anonymous) return ANONYMOUS_AGENT;
    const fix = options.via === 'contain' ? 'name it with keyway run --contain --agent ID' : 'set proxy.transparent.agent to the agent it is';
    throw new ProxyError('proxy_auth_required', `a redirected connection, and no agent for it (agents are configured): ${fix}`);
  }
  const agent = agents.get(options.agent);
  if (!agent) {
    const named = options.via === 'contain' ? `keyway run --contain --agent ${options.agent}` : `proxy.transparent.agent names agent "${options.agent}"`;
    throw new ProxyError('proxy_auth_required', `${named}, which does not exist`);
  }
  return agent;
}

function closeRefused(wiring: ProxyWiring, draft: AuditDraft, error: ProxyError, socket: Socket): void {
  draft.failed(error);
  draft.commit(wiring.runtime);
  socket.destroy();
}

/** The client left (or stayed silent) before saying where it goes: noted, as an abandoned CONNECT is. */
function gone(wiring: ProxyWiring, draft: AuditDraft, socket: Socket): void {
  draft.event.code = 'client_closed';
  draft.commit(wiring.runtime);
  socket.destroy();
}
