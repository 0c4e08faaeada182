import { caPendingRestart } from '../upstream-ca.ts';
import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { http } from '../../net/node-http.ts';
import { ProxyError } from '../../errors/index.ts';
import type { OutgoingRequest } from '../../credentials/injectors/index.ts';
import type { Grant } from '../../credentials/grants.ts';
import type { Connection } from '../connection.ts';
import { secretNeedles } from '../leak-guard/index.ts';
import { draftOn, refuse, refuseOnClose } from '../refuse.ts';
import { asProxyError } from '../respond.ts';
import { runHeadStages } from '../stages/index.ts';
import { StagedRequest } from '../stages/request.ts';
import { decodableAcceptEncoding } from '../leak-guard/encoding.ts';
import { chainInto, streamStages, type BodyGuard, type Redact } from '../leak-guard/response-guard.ts';
import { clientResponseHeaders } from '../headers.ts';
import { runResponseStages } from '../stages/index.ts';
import { formatAuthority } from '../target.ts';
import { upstreamError } from '../../egress/upstream-errors.ts';
import { WebSocketFrameGuard, WebSocketProtocolError } from './frames.ts';
import { bodySecret } from '../../credentials/injectors/index.ts';
import { ClientMessageSwap, type MessageSwapOptions } from './client-swap.ts';
import { acceptAgentDeflate } from './deflate-offer.ts';

/** A grant's body swap on the agent's messages, less what is agreed at the upgrade (deflate). */
type SwapSettings = Omit<MessageSwapOptions, 'deflate'>;

/**
 * Which requests with `Connection: Upgrade` take the upgrade path (the inner server's
 * shouldUpgradeCallback). Only a real WebSocket handshake (RFC 6455 4.1: GET, `Upgrade: websocket`,
 * a 16-byte Sec-WebSocket-Key, version 13) does; anything else (`Upgrade: h2c`, a GET with upgrade
 * headers and no key) is an ordinary request, forwarded with the upgrade headers removed as
 * hop-by-hop, so it gets the whole normal path: rules, replay, the leak guard, keep-alive.
 * Nothing then reaches a raw two-way pipe that keyway does not understand.
 */
export function isWebSocketHandshake(req: IncomingMessage): boolean {
  if (req.method !== 'GET') return false;
  if (
    String(req.headers.upgrade ?? '')
      .trim()
      .toLowerCase() !== 'websocket'
  )
    return false;
  if (req.headers['sec-websocket-version'] !== '13') return false;
  const key = req.headers['sec-websocket-key'];
  return typeof key === 'string' && /^[A-Za-z0-9+/]{22}==$/.test(key.trim());
}

/**
 * A WebSocket handshake (only those: see isWebSocketHandshake) inside an intercepted connection:
 * the same head stages as any request, then the upgrade. An open WebSocket holds a slot of its
 * agent's requests in flight until its connection closes (proxy.max_in_flight_per_agent):
 * otherwise an agent could hold any number of them open.
 */
export async function handleUpgrade(conn: Connection, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const { runtime } = conn;
  // The path is set once normalised: the audit names the path sent, never the raw one.
  const request = new StagedRequest(conn, req, draftOn(conn, req.method ?? 'GET', conn.client), req.url ?? '/');
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
    const redact = request.issued && {
      needles: secretNeedles(request.issued.credential),
      onRedacted: (count: number) => (draft.event.leak_redacted = (draft.event.leak_redacted ?? 0) + count),
    };
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
            hold: (bytes) => runtime.load.hold(share, bytes),
            release: (bytes) => runtime.load.release(share, bytes),
          };
    forwardWebSocket(request, socket, head, redact, swap);
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
function forwardWebSocket(request: StagedRequest, socket: Duplex, clientHead: Buffer, redact: Redact | undefined, swap: SwapSettings | undefined): void {
  const { conn, draft } = request;
  const { runtime } = conn;
  const out = request.outgoing!;
  socket.on('error', () => socket.destroy());
  const guarded = redact && redact.needles.length > 0 ? redact : undefined;
  let frameGuard: WebSocketFrameGuard | undefined;
  let swapper: ClientMessageSwap | undefined;
  let answered = false;
  socket.once('close', () => {
    if (frameGuard && frameGuard.redactions > 0) guarded?.onRedacted(frameGuard.redactions);
    const swapped = swapper?.summary();
    if (swapped) Object.assign(draft.event, swapped);
    // Gives back the memory a message cut off mid-way still held (a pipe does not end its target on close).
    swapper?.destroy();
    if (!answered) draft.event.code ??= 'client_closed';
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
  const upstream = openUpstream(conn, out, guarded, request.issued ? request.grant : undefined);
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
    socket.once('close', () => upSocket.destroy());
    upSocket.once('close', () => socket.destroy());
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
    if (guarded && res.headers['sec-websocket-extensions'] !== undefined) {
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
    if (upHead.length > 0) upSocket.unshift(upHead);
    let toUpstream: NodeJS.WritableStream = upSocket;
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
      messages.pipe(upSocket);
      toUpstream = messages;
    }
    if (clientHead.length > 0) toUpstream.write(clientHead);
    if (guarded) {
      frameGuard = new WebSocketFrameGuard(guarded.needles);
      frameGuard.once('error', (err: Error) => {
        // Our own message (a frame the guard cannot read), never the frame's bytes.
        const message = err instanceof WebSocketProtocolError ? err.message : 'the frames could not be scanned';
        draft.failed(new ProxyError('upstream_unreachable', `${authority}: WebSocket closed by the leak guard: ${message}`));
        upSocket.destroy();
        socket.destroy();
      });
      upSocket.pipe(frameGuard).pipe(socket);
    } else {
      upSocket.pipe(socket);
    }
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

/** The handshake upstream: the agent's headers with the credential, the upgrade headers put back. */
function openUpstream(conn: Connection, out: OutgoingRequest, redact: Redact | undefined, grant: Grant | undefined): ClientRequest {
  const { runtime, target } = conn;
  const headers: Record<string, string | string[]> = { ...out.headers, connection: 'Upgrade', upgrade: 'websocket' };
  if (redact) {
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

/**
 * Any answer but 101, on the agent's raw socket: redacted like every response, then the connection
 * closes (the socket was taken for the upgrade; it serves no further request).
 */
function relayAnswer(res: IncomingMessage, socket: Duplex, redact: Redact | undefined, fail: (err: unknown) => void): void {
  const status = res.statusCode ?? 502;
  let head: OutgoingHttpHeaders;
  let body: BodyGuard | undefined;
  try {
    head = clientResponseHeaders(res.headers);
    // No capture on a handshake's answer (no `capture` given): only the leak guard's plans come back.
    body = runResponseStages(head, { status, method: 'GET', headers: res.headers, redact }) as BodyGuard | undefined;
  } catch (err) {
    res.destroy();
    return fail(err);
  }
  res.once('error', () => socket.destroy());
  if (body?.kind === 'whole') {
    const whole = body;
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.once('end', () => {
      const output = whole.redact(Buffer.concat(chunks));
      socket.end(Buffer.concat([formatHead(status, { ...head, 'content-length': String(output.length), connection: 'close' }), output]));
    });
    return;
  }
  // With no Content-Length the body ends when the connection does (close-delimited).
  socket.write(formatHead(status, { ...head, connection: 'close' }));
  if (!body) {
    res.pipe(socket);
    return;
  }
  const entry = chainInto(streamStages(body), socket);
  entry.once('error', () => socket.destroy());
  res.pipe(entry);
}

/** A response head as bytes. The reason phrase is keyway's own: an upstream's could quote anything. */
function formatHead(status: number, headers: OutgoingHttpHeaders): Buffer {
  let text = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) text += `${name}: ${v}\r\n`;
  }
  return Buffer.from(`${text}\r\n`, 'latin1');
}
