import { timingSafeEqual, createHash } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { http } from '../net/node-http.ts';
import type { AddressInfo } from 'node:net';
import type { ListenAddress } from '../config/index.ts';
import type { AuditSink } from '../audit/index.ts';
import type { AgentTable } from '../credentials/agents.ts';
import type { Services } from '../services.ts';
import { listGrants } from '../credentials/grant-listing.ts';
import { adminHostGuard } from './host-guard.ts';
import { readinessAnswer, sendMetrics, type MetricsText, type Readiness } from './operate-routes.ts';
import { loadOrCreateAdminToken } from './token.ts';

export interface AdminServer {
  readonly address: AddressInfo;
  /** Stops accepting; open requests (an event stream) get up to `drainMs`, then are cut. Idempotent. */
  close(drainMs?: number): Promise<void>;
}

interface AdminOptions {
  services: Services;
  listen: ListenAddress;
  /** The agent table in force (swapped whole when the store changes). */
  agents: () => AgentTable;
  audit: AuditSink;
  /** What `keyway status` shows beyond the tables: counted by the composition root. */
  activity: () => ProxyActivity;
  /** POST /api/reload: re-reads the config file, as SIGHUP does (app.ts audits it); `client` is the caller's address. */
  reload: (client: string) => Promise<{ reloaded: boolean }>;
  /** For /readyz: checked on every call. */
  readiness: () => Readiness;
  /** For /metrics. */
  metrics: MetricsText;
}

/** Live numbers only the running process knows. Nothing in it is secret. */
export interface ProxyActivity {
  pid: number;
  started_at: string;
  /** Audit lines written for proxied requests since start: every request served, refused ones too. */
  requests: number;
  /** Of those, the ones keyway refused or failed (decision deny or error). */
  refused: number;
}

/**
 * The admin API: `/healthz` and `/readyz` (open, for health checks and `keyway doctor`), then, with
 * `Authorization: Bearer <data/admin.token>`, `/metrics` and JSON under `/api/` (read-only, and
 * POST /api/reload). It never returns a secret.
 */
export async function startAdminServer(options: AdminOptions): Promise<AdminServer> {
  const token = await loadOrCreateAdminToken(options.services.paths.adminToken);
  const tokenHash = sha256(token);
  // Set once the listener is bound (its port may be 0 in the config); no request arrives before.
  let hostAllowed: (host: string | undefined) => boolean = () => false;
  const server = http.createServer((req, res) => {
    if (!hostAllowed(req.headers.host)) return refuseHost(res);
    void route(req, res, options, tokenHash).catch(() => send(res, 500, { error: { code: 'internal_error' } }));
  });
  server.listen(options.listen.port, options.listen.host);
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  hostAllowed = adminHostGuard({
    address: address.address,
    port: address.port,
    configuredHost: options.listen.host,
    allowedHosts: options.services.config.admin.allowed_hosts,
  });
  let closing: Promise<void> | undefined;
  return {
    address,
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
  if (path === '/readyz') {
    const { status, body } = readinessAnswer(options.readiness());
    return send(res, status, body);
  }
  const offered = offeredToken(req);
  // An empty offer never passes, even if the token were somehow empty too.
  if (!timingSafeEqual(sha256(offered), tokenHash) || offered.length === 0) {
    return send(res, 401, { error: { code: 'admin_auth_required', message: 'send Authorization: Bearer <data/admin.token>' } });
  }
  if (req.method === 'GET' && path === '/metrics') return sendMetrics(res, options.metrics);
  if (req.method === 'GET' && path === '/api/status') return send(res, 200, statusOf(options));
  if (req.method === 'POST' && path === '/api/reload') {
    // 422: the request was fine, the config file it points at is not (the running config stays).
    const outcome = await options.reload(req.socket.remoteAddress ?? 'unknown');
    return send(res, outcome.reloaded ? 200 : 422, outcome);
  }
  if (req.method === 'GET' && path === '/api/grants') return send(res, 200, { grants: listGrants(options.services) });
  if (req.method === 'GET' && path === '/api/agents') {
    const agents = options
      .agents()
      .list()
      .map((a) => ({ id: a.id, source: a.source, grants: a.grants ? [...a.grants] : null }));
    return send(res, 200, { agents });
  }
  return send(res, 404, { error: { code: 'not_found', message: `no admin route ${req.method} ${path}` } });
}

/** For `keyway status`: counts and states, never a name of a secret or a value. */
function statusOf(options: AdminOptions): Record<string, unknown> {
  const activity = options.activity();
  const grants = listGrants(options.services);
  return {
    service: 'keyway',
    pid: activity.pid,
    started_at: activity.started_at,
    uptime_s: Math.max(0, Math.round((Date.now() - Date.parse(activity.started_at)) / 1000)),
    grants: grants.length,
    agents: options.agents().list().length,
    requests: activity.requests,
    refused: activity.refused,
    audit: options.audit.healthy ? 'ok' : 'failing',
  };
}

/** `Authorization: Bearer <token>` or `X-API-Key: <token>`; '' when neither is given. */
function offeredToken(req: IncomingMessage): string {
  const auth = req.headers.authorization ?? '';
  if (/^Bearer /i.test(auth)) return auth.slice(7).trim();
  const apiKey = req.headers['x-api-key'];
  return typeof apiKey === 'string' ? apiKey.trim() : '';
}

/**
 * Every path, /healthz included: a rebinding page has no business reading any of it, and one rule
 * is easier to reason about than exceptions. The received Host is not echoed (header values never
 * go into error bodies).
 */
function refuseHost(res: ServerResponse): void {
  const message = 'the admin API answers only to its own address (such as 127.0.0.1:PORT or localhost:PORT) in Host; this blocks DNS rebinding';
  send(
    res,
    403,
    { error: { code: 'host_not_allowed', message, grant: null, hint: 'use the address in data/proxy.json, or list the name in admin.allowed_hosts' } },
    { 'x-keyway-error': 'host_not_allowed', connection: 'close' },
  );
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
