import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { ProxyServer } from 'http-proxy-3';
import type { Grant } from '../credentials/grants.ts';
import type { OutgoingRequest } from '../credentials/injectors/index.ts';
import type { AuditDraft } from './audit-event.ts';
import { GRANT_HEADER, upstreamRequestHeaders } from './headers.ts';
import type { ExchangeContext } from './exchange.ts';
import type { ProxyRuntime } from './runtime.ts';
import { formatAuthority } from './target.ts';
import { upstreamError } from './upstream-errors.ts';
import { sendErrorOnSocket } from './respond.ts';

/**
 * WebSocket upgrades inside an intercepted connection go through http-proxy-3, which relays the
 * 101 (or a refusal) and then pipes frames both ways. The credential is set on the upgrade request.
 */
export class WebSocketForwarder {
  readonly #proxy: ProxyServer;
  readonly #drafts = new WeakMap<IncomingMessage, AuditDraft>();

  constructor(runtime: ProxyRuntime) {
    this.#proxy = new ProxyServer({ xfwd: false, secure: true });
    this.#proxy.on('proxyReqWs', (proxyReq: ClientRequest, req: IncomingMessage) => {
      const draft = this.#drafts.get(req);
      if (!draft) return;
      proxyReq.once('upgrade', () => (draft.event.status = 101));
      proxyReq.once('response', (r: IncomingMessage) => (draft.event.status = r.statusCode ?? null));
    });
    // Errors are handled per call; this keeps an unhandled 'error' event from ending the process.
    this.#proxy.on('error', (err: Error) => runtime.logger.debug({ code: (err as NodeJS.ErrnoException).code }, 'websocket relay error'));
  }

  forward(runtime: ProxyRuntime, req: IncomingMessage, socket: Duplex, head: Buffer, ctx: ExchangeContext, grant: Grant | undefined, out: OutgoingRequest, draft: AuditDraft): void {
    this.#drafts.set(req, draft);
    // http-proxy-3 copies req.headers, then lays options.headers over them: drop what must not
    // travel (Proxy-*, keyway's own header, the client's credential) from req.headers first,
    // keeping what the upgrade needs (Connection: Upgrade, Upgrade: websocket).
    const keep = upstreamRequestHeaders(req.headers);
    for (const name of Object.keys(req.headers)) {
      if (!(name in keep) && name !== 'connection' && name !== 'upgrade') delete req.headers[name];
    }
    delete req.headers[GRANT_HEADER];
    if (grant?.injector.headerName) delete req.headers[grant.injector.headerName];
    req.url = out.path;
    const authority = formatAuthority(ctx.target);
    socket.once('close', () => draft.commit(runtime));
    this.#proxy.ws(
      req,
      socket,
      head,
      {
        target: `${ctx.scheme === 'https' ? 'wss' : 'ws'}://${authority}`,
        agent: ctx.scheme === 'https' ? runtime.upstream.httpsAgent : runtime.upstream.httpAgent,
        headers: Object.fromEntries(Object.entries(out.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v ?? ''])),
      },
      (err: Error) => {
        const error = upstreamError(err, authority, grant?.id);
        draft.failed(error);
        sendErrorOnSocket(socket, error);
      },
    );
  }
}
