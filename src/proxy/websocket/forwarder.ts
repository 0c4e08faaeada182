import { caPendingRestart } from '../upstream-ca.ts';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { http } from '../../net/node-http.ts';
import { ProxyError } from '../../errors/index.ts';
import type { OutgoingRequest } from '../../credentials/injectors/index.ts';
import type { Grant } from '../../credentials/grant.ts';
import type { Connection } from '../connection.ts';
import { secretNeedles } from '../leak-guard/index.ts';
import { refuse, refuseOnClose } from '../refuse.ts';
import { asProxyError } from '../respond.ts';
import { openSocketTaps, runHeadStages } from '../stages/index.ts';
import { decodableAcceptEncoding } from '../leak-guard/encoding.ts';
import { guards, type Redact } from '../leak-guard/response-guard.ts';
import { clientResponseHeaders } from '../headers.ts';
import { runResponseStages } from '../stages/index.ts';
import { formatAuthority } from '../target.ts';
import { upstreamError } from '../../egress/upstream-errors.ts';
import { WebSocketProtocolError } from '../websocket-frames/frame-reader.ts';
import { WebSocketFrameGuard } from './upstream-guard.ts';
import { bodySecret } from '../../credentials/injectors/index.ts';
import { ClientMessageSwap, type MessageSwapOptions } from './client-swap.ts';
import { acceptAgentDeflate } from './deflate-offer.ts';
import { AgentBoundFrames } from './agent-close.ts';
import { Handshake } from './handshake.ts';
import type { OpenSocket, SocketReaders, SocketTapping } from '../stages/hooks.ts';
import type { HeldBodyMemory } from '../websocket-frames/agent-frames.ts';
import { formatHead, relayAnswer } from './relay-answer.ts';

/** A grant's body swap on the agent's messages, less what is agreed at the upgrade (deflate). */
type SwapSettings = Omit<MessageSwapOptions, 'deflate'>;

/**
 * A WebSocket handshake (only those: see websocket-handshake.ts) inside an intercepted connection:
 * the same head stages as any request, then the upgrade. An open WebSocket holds a slot of its
 * agent's requests in flight until its connection closes (proxy.max_in_flight_per_agent):
 * otherwise an agent could hold any number of them open.
 */
export async function handleUpgrade(conn: Connection, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const { runtime } = conn;
  const request = new Handshake(conn, req, socket);
  if (socket.destroyed || socket.writableEnded) {
    // Closed while the answers ahead were written (by the agent, or by an answer ahead that ended
    // the connection): nothing was sent upstream.
    request.draft.event.code = 'client_closed';
    request.draft.commit(runtime);
    return;
  }
  try {
    const share = runtime.load.admit(conn.agent.id);
    socket.once('close', () => runtime.load.leave(share));
    await runHeadStages(request);
    const { draft } = request;
    // The socket taps, which may refuse the handshake (a throw): nothing has gone upstream.
    const taps = openSocketTaps(request);
    // The credential on the handshake, and the real values keyway holds for the agent (looked for in
    // every answer and message of its connections, whatever the handshake carried).
    if (request.issued && request.grant) conn.issuing.held?.noteServed(request.grant.id, request.issued.credential);
    const held = conn.issuing.held?.forAgent(conn.agent);
    const redact: Redact | undefined =
      request.issued || held
        ? {
            needles: request.issued ? secretNeedles(request.issued.credential) : [],
            held,
            onRedacted: (count: number) => (draft.event.leak_redacted = (draft.event.leak_redacted ?? 0) + count),
          }
        : undefined;
    // What a reader that holds an agent's message whole reserves: the agent's memory for held bodies.
    const memory: HeldBodyMemory = { hold: (bytes) => runtime.load.hold(share, bytes), release: (bytes) => runtime.load.release(share, bytes) };
    // inject: {body: true}: the grant's placeholder in the agent's text messages becomes its secret.
    const placeholder = request.grant?.bodyPlaceholder;
    const secret = request.issued && bodySecret(request.issued.credential);
    const swap: SwapSettings | undefined =
      placeholder === undefined || secret === undefined
        ? undefined
        : {
            placeholder,
            secret,
            fields: request.grant?.bodyFields,
            limit: runtime.config.proxy.max_body_swap,
            ...memory,
          };
    forwardWebSocket(request, socket, head, redact, swap, taps, memory);
  } catch (err) {
    refuse(runtime, request.draft, asProxyError(err), socket);
  }
}

/**
 * The handshake goes up with the credential, and the answer comes back through the leak guard when
 * a secret was injected. A 101 is relayed, then frames flow both ways, upstream-to-agent ones
 * through WebSocketFrameGuard. Any other answer (an error page quoting the header, an echo) is an
 * ordinary response and redacted like one.
 */
function forwardWebSocket(
  request: Handshake,
  socket: Duplex,
  clientHead: Buffer,
  redact: Redact | undefined,
  swap: SwapSettings | undefined,
  taps: readonly SocketTapping[],
  memory: HeldBodyMemory,
): void {
  const { conn, draft } = request;
  const { runtime } = conn;
  const out = request.outgoing!;
  socket.on('error', () => socket.destroy());
  const guarded = guards(redact) ? redact : undefined;
  let frameGuard: WebSocketFrameGuard | undefined;
  let swapper: ClientMessageSwap | undefined;
  /** The socket taps' readers, once the 101 went out. */
  const readers: SocketReaders[] = [];
  let answered = false;
  socket.once('close', () => {
    if (frameGuard && frameGuard.redactions > 0) guarded?.onRedacted(frameGuard.redactions);
    const swapped = swapper?.summary();
    if (swapped) Object.assign(draft.event, swapped);
    // Gives back the memory a message cut off mid-way still held (a pipe does not end its target on close).
    swapper?.destroy();
    if (!answered) draft.event.code ??= 'client_closed';
    for (const reader of readers) reader.closed?.();
    draft.commit(runtime);
  });
  const authority = formatAuthority(conn.target);
  const fail = (err: unknown) => {
    const error = upstreamError(
      err,
      authority,
      draft.event.grant ?? undefined,
      request.issued !== undefined && request.grant?.clientCertificate !== undefined,
      caPendingRestart(runtime),
    );
    if (!answered) return refuseOnClose(draft, error, socket);
    // Once a head went out, the agent can only see the connection end.
    draft.failed(error);
    socket.destroy();
  };
  // A grant's client certificate goes on its own upgrade connection (egress/client-tls.ts).
  // Compressed frames could be neither scanned nor searched: the upstream is offered no compression then.
  // So do the socket taps that read the frames (stages/hooks.ts).
  const read = guarded !== undefined || taps.some((tap) => tap.reads);
  const upstream = openUpstream(conn, out, read, request.issued ? request.grant : undefined);
  socket.once('close', () => upstream.destroy());
  upstream.setTimeout(runtime.upstream.headersTimeoutMs, () => upstream.destroy(Object.assign(new Error('no answer to the upgrade'), { code: 'ETIMEDOUT' })));
  upstream.once('error', fail);

  upstream.once('upgrade', (res: IncomingMessage, upSocket: Socket, upHead: Buffer) => {
    upstream.setTimeout(0);
    upSocket.on('error', () => upSocket.destroy());
    // Like a blind tunnel: no frame either way for proxy.timeouts.idle closes both sides, so idle
    // WebSockets cannot pile up until descriptors run out. Applications that keep a socket open
    // while quiet send pings, which count as traffic.
    closeWhenQuiet(socket, upSocket, runtime.config.proxy.timeouts.idle);
    // What goes to the agent passes through here, so that keyway can close the WebSocket itself
    // between two frames (agent-close.ts): a revocation, a refused message.
    const toAgent = new AgentBoundFrames();
    let closing = false;
    const closeWith = (code: number, reason: string) => {
      if (closing) return;
      closing = true;
      socket.unpipe();
      upSocket.destroy();
      if (!toAgent.close(code, reason)) return void socket.destroy();
      // The agent answers the close frame and ends; one that does not is cut.
      setTimeout(() => socket.destroy(), CLOSE_WAIT_MS).unref();
    };
    socket.once('close', () => upSocket.destroy());
    upSocket.once('close', () => closing || socket.destroy());
    // The agent is done (its socket allows half-open, like every HTTP server socket): finish our
    // side and drop the upstream, rather than wait on an upstream that may never close.
    socket.once('end', () => {
      upSocket.destroy();
      socket.end();
    });
    draft.event.status = 101;
    if (String(res.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      upSocket.destroy();
      return fail(new ProxyError('upstream_unreachable', `${authority} switched to a protocol other than WebSocket`));
    }
    // The offer was removed (openUpstream): frames compressed anyway could not be scanned.
    if (read && res.headers['sec-websocket-extensions'] !== undefined) {
      upSocket.destroy();
      return fail(new ProxyError('upstream_unreachable', `${authority} accepted a WebSocket extension keyway did not offer`));
    }
    // A 101 has no body: only the head stages apply (hop-by-hop dropped, the secret redacted).
    const head = clientResponseHeaders(res.headers);
    runResponseStages(head, { status: 101, method: 'GET', headers: res.headers, redact: guarded });
    // The agent's compression offer is answered by keyway itself (deflate-offer.ts): the upstream never saw it.
    const deflate = swap && acceptAgentDeflate(request.req.headers['sec-websocket-extensions']);
    if (deflate) head['sec-websocket-extensions'] = deflate.response;
    answered = true;
    socket.write(formatHead(101, { connection: 'Upgrade', upgrade: 'websocket', ...head }));
    request.closeWith = closeWith;
    if (upHead.length > 0) upSocket.unshift(upHead);
    const open: OpenSocket = {
      get gone() {
        return socket.destroyed;
      },
      closeWith,
      destroy: () => {
        upSocket.destroy();
        socket.destroy();
      },
      memory,
    };
    for (const tap of taps) {
      const started = tap.start(open);
      if (started !== undefined) readers.push(started);
    }
    // The agent's frames pass the taps' readers in the list's order, so the pipe is laid from the
    // upstream back: the readers of what goes up (after the swap), the swap, the readers of what the agent sent.
    let toUpstream = throughReaders(readers, 'toUpstream', upSocket);
    if (swap) {
      const messages = new ClientMessageSwap({ ...swap, deflate });
      swapper = messages;
      const close = () => {
        upSocket.destroy();
        socket.destroy();
      };
      // A message keyway can neither swap nor pass on (compressed and over the bound, a bomb, bytes
      // that do not inflate): the connection ends; the audit line's body_swap says why.
      messages.once('refuse', close);
      messages.once('error', (err: Error) => {
        const message = err instanceof WebSocketProtocolError ? err.message : 'the frames could not be read';
        draft.failed(new ProxyError('bad_request', `WebSocket closed by keyway: ${message}`));
        close();
      });
      messages.pipe(toUpstream);
      toUpstream = messages;
    }
    if (guarded) {
      frameGuard = new WebSocketFrameGuard(guarded.needles, guarded.held);
      frameGuard.once('error', (err: Error) => {
        // Our own message (a frame the guard cannot read), never the frame's bytes.
        const message = err instanceof WebSocketProtocolError ? err.message : 'the frames could not be scanned';
        draft.failed(new ProxyError('upstream_unreachable', `${authority}: WebSocket closed by the leak guard: ${message}`));
        upSocket.destroy();
        socket.destroy();
      });
    }
    toUpstream = throughReaders(readers, 'fromAgent', toUpstream);
    // What the agent sent behind its handshake goes through the same checks as what follows it.
    if (clientHead.length > 0) toUpstream.write(clientHead);
    let fromUpstream: NodeJS.ReadableStream = upSocket;
    if (frameGuard) fromUpstream = fromUpstream.pipe(frameGuard);
    for (const reader of readers) if (reader.toAgent) fromUpstream = fromUpstream.pipe(reader.toAgent);
    fromUpstream.pipe(toAgent).pipe(socket);
    socket.pipe(toUpstream);
  });

  upstream.once('response', (res: IncomingMessage) => {
    upstream.setTimeout(0);
    draft.event.status = res.statusCode ?? null;
    // The connection ends with this answer: what the agent pipelined behind its handshake is
    // read and dropped, never parsed (closing on unread bytes would reset the answer away).
    socket.resume();
    relayAnswer(res, socket, guarded, fail);
    answered = true;
  });
  upstream.end();
}

/**
 * Lays the taps' readers at one place of the agent's frames in front of `next`, from the last back,
 * so that the frames pass them in the list's order; returns where the agent's frames now go in.
 */
function throughReaders(readers: readonly SocketReaders[], at: 'fromAgent' | 'toUpstream', next: NodeJS.WritableStream): NodeJS.WritableStream {
  for (let i = readers.length - 1; i >= 0; i--) {
    const reader = readers[i]![at];
    if (reader === undefined) continue;
    reader.pipe(next);
    next = reader;
  }
  return next;
}

/** How long the agent has to answer keyway's close frame before its socket is cut. */
const CLOSE_WAIT_MS = 1_000;

/** Closes both sockets once neither has read or written anything for `idleMs`. */
function closeWhenQuiet(client: Duplex, upstream: Socket, idleMs: number): void {
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  (client as Duplex & { setTimeout(ms: number): void }).setTimeout(idleMs);
  upstream.setTimeout(idleMs);
  client.once('timeout', close);
  upstream.once('timeout', close);
}

/**
 * The handshake upstream: the agent's headers with the credential, the upgrade headers put back.
 * `read`: keyway reads the frames (the leak guard, the placeholder search), so none may be compressed.
 */
function openUpstream(conn: Connection, out: OutgoingRequest, read: boolean, grant: Grant | undefined): ClientRequest {
  const { runtime, target } = conn;
  const headers: Record<string, string | string[]> = { ...out.headers, connection: 'Upgrade', upgrade: 'websocket' };
  if (read) {
    // permessage-deflate would compress the frames the guard must read: not offered.
    delete headers['sec-websocket-extensions'];
    const accept = decodableAcceptEncoding(headers['accept-encoding']);
    if (accept !== undefined) headers['accept-encoding'] = accept;
  }
  const options = { host: target.host, port: target.port, method: 'GET', path: out.path, headers };
  return conn.scheme === 'https'
    ? httpsRequest({ ...options, agent: runtime.upstream.httpsAgentFor(grant) })
    : http.request({ ...options, agent: runtime.upstream.httpAgent });
}
