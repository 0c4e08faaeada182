import type { Duplex } from 'node:stream';
import { once } from 'node:events';
import { isLoopbackAddress } from '../config/loopback.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ListenAddress } from '../config/index.ts';
import { http } from '../net/node-http.ts';
import { adminRoutes } from './api/index.ts';
import { adminAuth, tokenCheck, type AdminAuth } from './auth.ts';
import { connectRefusal, reasonPhrase } from './connect-refusal.ts';
import { dashboardFiles, setSecurityHeaders, type DashboardFiles } from './dashboard-files.ts';
import type { AdminDeps } from './deps.ts';
import { adminHostGuard } from './host-guard.ts';
import { dispatch, INTERNAL_ERROR_MESSAGE, RouteTable, sendError } from './router.ts';
import { csrfMatches, dropCsrfParam, SessionStore } from './session.ts';
import { SignInLimiter } from './sign-in-limit.ts';
import { loadOrCreateAdminToken, suppliedAdminToken } from './token.ts';

export type { ProxyActivity } from './deps.ts';

export interface AdminServer {
  readonly address: AddressInfo;
  /** Stops accepting; event streams end at once, other open requests get up to `drainMs`, then are cut. Idempotent. */
  close(drainMs?: number): Promise<void>;
}

interface AdminOptions extends Omit<AdminDeps, 'closing'> {
  listen: ListenAddress;
}

/**
 * The admin listener: `/healthz` and `/readyz` open (health checks, `keyway doctor`), and the
 * dashboard's files and sign-in; everything else needs the admin token or a dashboard session (auth.ts). The routes are in api/; router.ts runs them, audits every
 * write, and builds /api/openapi.json from the same table. No answer ever carries a secret.
 */
export async function startAdminServer(options: AdminOptions): Promise<AdminServer> {
  const token = await loadOrCreateAdminToken(options.services.paths.adminToken, options.env);
  const isToken = tokenCheck(token);
  const sessions = new SessionStore();
  const authorized = adminAuth(isToken, sessions);
  const dashboard = dashboardFiles();
  const closing = new AbortController();
  const table: RouteTable = new RouteTable(
    adminRoutes({ ...options, closing: closing.signal }, () => table.routes, {
      sessions,
      isToken,
      limiter: new SignInLimiter(),
      tokenWhere: isLoopbackAddress(options.listen.host)
        ? (await suppliedAdminToken(options.env)) === undefined
          ? { file: options.services.paths.adminToken }
          : { environment: true }
        : undefined,
    }),
  );
  // Set once the listener is bound (its port may be 0 in the config); no request arrives before.
  let hostAllowed: (host: string | undefined) => boolean = () => false;
  let address: AddressInfo | undefined;
  const server = http.createServer((req, res) => {
    setSecurityHeaders(res);
    if (!hostAllowed(req.headers.host)) return refuseHost(res);
    const where = { audit: options.adminAudit, store: options.services.store, host: address?.address ?? '', port: address?.port ?? 0 };
    void answer(req, res, { table, authorized, dashboard }, where).catch(() => {
      if (!res.headersSent) sendError(res, 'internal_error', { message: INTERNAL_ERROR_MESSAGE });
    });
  });
  // A proxy URL pointed at the admin port by mistake: the client's CONNECT gets a 400 that names
  // the proxy's address, not a connection cut with no word (curl: "Proxy CONNECT aborted"). Clients
  // show a refused CONNECT's status line, never its body (curl -v, git's and Python's errors), so
  // the fix is in the reason phrase too.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    const message = connectRefusal(options.proxyUrl({ id: 'agent', key: 'key' }));
    const hint = 'keyway env prints the variables';
    const body = JSON.stringify({ error: { code: 'bad_request', message, hint } });
    socket.on('error', () => socket.destroy());
    socket.end(
      `HTTP/1.1 400 ${reasonPhrase(`${message} (${hint})`)}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  server.listen(options.listen.port, options.listen.host);
  await once(server, 'listening');
  address = server.address() as AddressInfo;
  hostAllowed = adminHostGuard({
    address: address.address,
    port: address.port,
    configuredHost: options.listen.host,
    allowedHosts: options.services.config.admin.allowed_hosts,
  });
  const bound = address;
  let closed: Promise<void> | undefined;
  return {
    address: bound,
    close(drainMs = 0) {
      closing.abort();
      closed ??= new Promise<void>((resolve) => {
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
      return closed;
    },
  };
}

async function answer(
  req: IncomingMessage,
  res: ServerResponse,
  { table, authorized, dashboard }: { table: RouteTable; authorized: AdminAuth; dashboard: DashboardFiles },
  where: { audit: AdminDeps['adminAudit']; store: AdminDeps['services']['store']; host: string; port: number },
): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  if (dashboard(req.method ?? 'GET', path, res)) return;
  const found = table.match(req.method ?? 'GET', path);
  const open = 'found' in found && found.found.route.open === true;
  // Before anything else, even a 404: without the token, nothing says which routes exist.
  const caller = open ? null : authorized(req);
  if (!open && !caller) {
    return sendError(res, 'admin_auth_required', {
      message: 'send Authorization: Bearer <the admin token: data/admin.token, or KEYWAY_ADMIN_TOKEN(_FILE) when set>, or sign in to the dashboard',
    });
  }
  // A cookie is sent by the browser on its own, to every port of the host; only the page that signed
  // in knows the CSRF token (session.ts says why reads need it too).
  if (caller?.kind === 'session' && !csrfMatches(req, caller.session)) {
    return sendError(res, 'csrf_required', { message: 'a call made with the dashboard session needs its X-Keyway-CSRF header' });
  }
  dropCsrfParam(req);
  if ('found' in found) return dispatch(found.found, req, res, path, { ...where, actor: caller?.kind ?? null });
  if (found.allowed.length > 0) {
    return sendError(res, 'method_not_allowed', { message: `${path} answers ${found.allowed.join(', ')}` }, { allow: found.allowed.join(', ') });
  }
  return sendError(res, 'not_found', { message: `no admin route ${req.method} ${path}` });
}

/**
 * Every path, /healthz included: a rebinding page has no business reading any of it, and one rule
 * is easier to reason about than exceptions. The received Host is not echoed (header values never
 * go into error bodies).
 */
function refuseHost(res: ServerResponse): void {
  const message = 'the admin API answers only to its own address (such as 127.0.0.1:PORT or localhost:PORT) in Host; this blocks DNS rebinding';
  sendError(
    res,
    'host_not_allowed',
    { message, grant: null, hint: 'use the address in data/proxy.json, or list the name in admin.allowed_hosts' },
    { 'x-keyway-error': 'host_not_allowed', connection: 'close' },
  );
}
