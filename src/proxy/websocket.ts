import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { http } from '../net/node-http.ts';
import { ProxyError } from '../errors/index.ts';
import type { AuditDraft } from './audit-event.ts';
import type { ExchangeContext } from './exchange.ts';
import { clientResponseHeaders } from './headers.ts';
import { decodableAcceptEncoding } from './leak-guard-encoding.ts';
import { sendErrorOnSocket } from './respond.ts';
import { chainInto, guardResponse, streamStages, type BodyGuard, type Redact } from './response-guard.ts';
import type { ProxyRuntime } from './runtime.ts';
import { formatAuthority } from './target.ts';
import { upstreamError } from './upstream-errors.ts';
import { WebSocketFrameGuard, WebSocketProtocolError } from './websocket-frames.ts';

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
 * A WebSocket upgrade inside an intercepted connection: the handshake goes up with the credential,
 * and the answer comes back through the leak guard when a secret was injected. A 101 is relayed,
 * then frames flow both ways, upstream-to-agent ones through WebSocketFrameGuard. Any other answer
 * (an error page quoting the header, an echo) is an ordinary response and redacted like one.
 */
export class WebSocketForwarder {
  forward(
    runtime: ProxyRuntime,
    socket: Duplex,
    clientHead: Buffer,
    ctx: ExchangeContext,
    out: { path: string; headers: Record<string, string | string[]> },
    draft: AuditDraft,
    redact: Redact | undefined,
  ): void {
    socket.on('error', () => socket.destroy());
    const guarded = redact && redact.needles.length > 0 ? redact : undefined;
    let frameGuard: WebSocketFrameGuard | undefined;
    let answered = false;
    socket.once('close', () => {
      if (frameGuard && frameGuard.redactions > 0) guarded?.onRedacted(frameGuard.redactions);
      if (!answered) draft.event.code ??= 'client_closed';
      draft.commit(runtime);
    });
    const authority = formatAuthority(ctx.target);
    const fail = (err: unknown) => {
      const error = upstreamError(err, authority, draft.event.grant ?? undefined);
      draft.failed(error);
      // Once a head went out, the agent can only see the connection end.
      if (answered) socket.destroy();
      else sendErrorOnSocket(socket, error);
    };
    const upstream = openUpstream(runtime, ctx, out, guarded);
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
      // A 101 has no body: guardResponse only redacts its headers (and drops hop-by-hop ones).
      const { head } = guarded ? guardResponse(101, 'GET', res.headers, guarded) : { head: clientResponseHeaders(res.headers) };
      answered = true;
      socket.write(formatHead(101, { connection: 'Upgrade', upgrade: 'websocket', ...head }));
      if (upHead.length > 0) upSocket.unshift(upHead);
      if (clientHead.length > 0) upSocket.write(clientHead);
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
      socket.pipe(upSocket);
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
function openUpstream(
  runtime: ProxyRuntime,
  ctx: ExchangeContext,
  out: { path: string; headers: Record<string, string | string[]> },
  redact: Redact | undefined,
): ClientRequest {
  const headers: Record<string, string | string[]> = { ...out.headers, connection: 'Upgrade', upgrade: 'websocket' };
  if (redact) {
    // permessage-deflate would compress the frames the guard must read: not offered.
    delete headers['sec-websocket-extensions'];
    const accept = decodableAcceptEncoding(headers['accept-encoding']);
    if (accept !== undefined) headers['accept-encoding'] = accept;
  }
  const options = { host: ctx.target.host, port: ctx.target.port, method: 'GET', path: out.path, headers };
  return ctx.scheme === 'https'
    ? httpsRequest({ ...options, agent: runtime.upstream.httpsAgent })
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
    ({ head, body } = redact ? guardResponse(status, 'GET', res.headers, redact) : { head: clientResponseHeaders(res.headers), body: undefined });
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

/**
 * Answers still owed on each client connection. Node emits 'upgrade' as soon as it parses the
 * handshake, even behind pipelined requests whose answers are still being written: those keep
 * writing to the socket, so an upgrade's answer (raw bytes, not a ServerResponse) would land in
 * the middle of them. An upgrade waits its turn here; meanwhile nothing more is read from the
 * connection (Node leaves the socket paused until someone reads it).
 */
export class AnswersOwed {
  private readonly owed = new WeakMap<object, Map<Closing, { readonly complete: boolean }>>();

  /** An answer now owed on `socket` to `req`, settled when `res` closes (finished, or the connection died). */
  add(socket: object, req: { readonly complete: boolean }, res: Closing): void {
    let pending = this.owed.get(socket);
    if (!pending) {
      pending = new Map();
      this.owed.set(socket, pending);
    }
    pending.set(res, req);
    // 'on': a response closes once, and once's wrapper costs per request.
    res.on('close', () => pending.delete(res));
  }

  /**
   * Whether every request owed an answer on `socket` was read whole: their answers need nothing
   * more from the agent. Not so when the parser failed inside a request's body: that request is
   * the one refused, at once.
   */
  allRead(socket: object): boolean {
    return [...(this.owed.get(socket)?.values() ?? [])].every((req) => req.complete);
  }

  /**
   * Resolves once every answer owed on `socket` ahead of `res` is written (or the socket closed):
   * then `res` is the one Node writes to the connection. Answers are owed in the order requests
   * arrived (a Map keeps insertion order).
   */
  async settledBefore(socket: Duplex, res: Closing): Promise<void> {
    const pending = this.owed.get(socket);
    if (!pending) return;
    const answers = [...pending.keys()];
    const ahead = answers.slice(0, Math.max(0, answers.indexOf(res)));
    for (const answer of ahead) {
      if (socket.destroyed) return;
      if (!pending.has(answer)) continue;
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off('close', done);
          resolve();
        };
        answer.once('close', done);
        socket.once('close', done);
      });
    }
    // Node hands the connection to the next queued answer in the same turn as 'finish'.
    await new Promise((resolve) => setImmediate(resolve));
  }

  /** Resolves once every answer owed on `socket` is written, or the socket closed. */
  async settled(socket: Duplex): Promise<void> {
    const pending = this.owed.get(socket);
    // Bounded: each round waits for one answer to close or the socket to; answers are finite.
    for (let round = 0; pending && pending.size > 0 && !socket.destroyed && round < 10_000; round++) {
      const [first] = pending.keys();
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off('close', done);
          resolve();
        };
        first!.once('close', done);
        socket.once('close', done);
      });
      // Node hands the connection to the next queued answer in the same turn as 'finish'.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

interface Closing {
  once(event: 'close', listener: () => void): unknown;
  on(event: 'close', listener: () => void): unknown;
}
