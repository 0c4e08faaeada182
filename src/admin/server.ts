import { timingSafeEqual, createHash } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { http } from '../net/node-http.ts';
import type { AddressInfo } from 'node:net';
import type { ListenAddress } from '../config/index.ts';
import type { ProxyTables, AuditSink } from '../proxy/runtime.ts';
import type { Services } from '../services.ts';
import { listGrants } from '../credentials/grant-listing.ts';
import { loadOrCreateAdminToken } from './token.ts';

export interface AdminServer {
  readonly address: AddressInfo;
  /** Stops accepting; open requests (an event stream) get up to `drainMs`, then are cut. Idempotent. */
  close(drainMs?: number): Promise<void>;
}

interface AdminOptions {
  services: Services;
  listen: ListenAddress;
  tables: () => ProxyTables;
  audit: AuditSink;
}

/**
 * The admin API: `/healthz` (open, for health checks and `keyway doctor`) and read-only JSON under
 * `/api/` that needs `Authorization: Bearer <data/admin.token>`. It never returns a secret.
 */
export async function startAdminServer(options: AdminOptions): Promise<AdminServer> {
  const token = await loadOrCreateAdminToken(options.services.paths.adminToken);
  const tokenHash = sha256(token);
  const server = http.createServer((req, res) => {
    void route(req, res, options, tokenHash).catch(() => send(res, 500, { error: { code: 'internal_error' } }));
  });
  server.listen(options.listen.port, options.listen.host);
  await once(server, 'listening');
  let closing: Promise<void> | undefined;
  return {
    address: server.address() as AddressInfo,
    close(drainMs = 0) {
      closing ??= new Promise<void>((resolve) => {
        // server.close() closes the connections idle at that moment only; one that finishes its
        // request later would stay open for its keep-alive time: sweep until none is left.
        const sweep = setInterval(() => server.closeIdleConnections(), 100);
        const cut = setTimeout(() => server.closeAllConnections(), drainMs);
        server.close(() => {
          clearInterval(sweep);
          clearTimeout(cut);
          resolve();
        });
        if (drainMs === 0) server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function route(req: IncomingMessage, res: ServerResponse, options: AdminOptions, tokenHash: Buffer): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/healthz') {
    return send(res, options.audit.healthy ? 200 : 503, { ok: options.audit.healthy, audit: options.audit.healthy ? 'ok' : 'unavailable' });
  }
  const auth = req.headers.authorization ?? '';
  const offered = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
  if (!timingSafeEqual(sha256(offered), tokenHash)) {
    return send(res, 401, { error: { code: 'admin_auth_required', message: 'send Authorization: Bearer <data/admin.token>' } });
  }
  if (req.method === 'GET' && path === '/api/grants') return send(res, 200, { grants: listGrants(options.services) });
  if (req.method === 'GET' && path === '/api/agents') {
    const agents = options.tables().agents.list().map((a) => ({ id: a.id, source: a.source, grants: a.grants ? [...a.grants] : null }));
    return send(res, 200, { agents });
  }
  return send(res, 404, { error: { code: 'not_found', message: `no admin route ${req.method} ${path}` } });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
