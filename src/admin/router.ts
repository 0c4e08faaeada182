// The admin API's routes, in one table: each route is its method, its path template, its handler and
// its OpenAPI description. The same table answers requests and builds /api/openapi.json
// (openapi.ts), so a route cannot exist undocumented; test/integration/admin-openapi.test.ts calls
// every documented operation, so a documented route cannot be missing either.
//
// Every write (any method but GET) is audited here, once, whatever its outcome: one line with
// decision `admin`, the route's action, the path, the status, and the grant or agent it touched.
// Handlers never audit themselves.

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditEvent } from '../audit/index.ts';
import { carryOwedLine, riderFor, settleOwedLine } from '../credentials/store/change-rider.ts';
import type { CredentialStore } from '../credentials/store/index.ts';
import { MalformedInput } from '../operations/fields.ts';
import { ADMIN_STATUS_BY_CODE, AdminError, KeywayError, ProxyError, type AdminCode } from '../errors/index.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What a handler gets. `params` holds the path template's `{name}` parts, decoded. */
export interface AdminContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Readonly<Record<string, string>>;
  query: URLSearchParams;
  /** The caller's address, as audit lines record it. */
  client: string;
  /** How the caller signed in, as audit lines record it (`actor`); null on an open route. */
  actor: 'token' | 'session' | null;
  /** The JSON request body (an object; 400/413/415 before the handler runs otherwise). Read once. */
  body(): Promise<Record<string, unknown>>;
}

/**
 * A handler's answer: a JSON body, or `streamed` when it wrote the response itself (an event
 * stream, the metrics text). `audit` names what a write touched when the path's `{grant}` or
 * `{agent}` does not say it (a create takes the id from the body).
 */
export type Reply =
  | { status: number; body: unknown; headers?: Record<string, string>; audit?: AuditTouch }
  | { streamed: true; status: number; audit?: AuditTouch };

export interface AuditTouch {
  grant?: string | null;
  agent?: string | null;
}

/** The OpenAPI 3.1 operation object for a route, less what the table already says. */
export interface RouteDoc {
  summary: string;
  description?: string;
  /** Unique; also the audit line's `action` for a write (`grants.create`). */
  operationId: string;
  tags: string[];
  requestBody?: unknown;
  /** By status code; 401 and 403 (host) are added for every route that needs the token. */
  responses: Record<string, unknown>;
  parameters?: unknown[];
}

export interface Route {
  method: Method;
  /** `/api/grants/{grant}`: a `{name}` part matches one path segment. */
  path: string;
  /** Open routes (the probes, the OAuth callback) answer without the admin token. */
  open?: boolean;
  /** A GET that changes something (the OAuth callback stores a grant): audited as a write is. */
  audited?: boolean;
  /** A write that writes its own, richer audit line (reload: what changed); the router writes none. */
  auditsItself?: boolean;
  doc: RouteDoc;
  handle(ctx: AdminContext): Promise<Reply> | Reply;
}

/** Largest JSON body a write accepts: grants and secrets are small. */
export const MAX_BODY_BYTES = 64 * 1024;

interface CompiledRoute {
  route: Route;
  pattern: RegExp;
  names: string[];
}

export interface Matched {
  route: Route;
  params: Record<string, string>;
}

/** Finds routes by method and path. `allowed` lists the methods a path answers to (for 405). */
export class RouteTable {
  readonly routes: readonly Route[];
  readonly #compiled: CompiledRoute[];

  constructor(routes: readonly Route[]) {
    const seen = new Set<string>();
    for (const r of routes) {
      const key = `${r.method} ${r.path}`;
      if (seen.has(key)) throw new Error(`admin route ${key} is defined twice`);
      seen.add(key);
    }
    this.routes = routes;
    this.#compiled = routes.map(compile);
  }

  match(method: string, path: string): { found: Matched } | { allowed: Method[] } {
    const allowed: Method[] = [];
    for (const c of this.#compiled) {
      const m = c.pattern.exec(path);
      if (!m) continue;
      if (c.route.method !== method) {
        allowed.push(c.route.method);
        continue;
      }
      const params: Record<string, string> = {};
      for (const [i, name] of c.names.entries()) {
        const raw = m[i + 1] ?? '';
        try {
          params[name] = decodeURIComponent(raw);
        } catch {
          return { allowed: [] };
        }
      }
      return { found: { route: c.route, params } };
    }
    return { allowed };
  }
}

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const source = route.path
    .split('/')
    .map((part) => {
      const param = /^\{([a-z_]+)\}$/.exec(part);
      if (!param) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(param[1] as string);
      return '([^/]+)';
    })
    .join('/');
  return { route, pattern: new RegExp(`^${source}$`), names };
}

/** Where the router writes the audit line of each write. */
export interface AdminAuditTarget {
  write(event: AuditEvent): Promise<void>;
}

export interface DispatchOptions {
  audit: AdminAuditTarget;
  /** The listener's own address, as audit lines record it. */
  host: string;
  port: number;
  /** The store a write's owed line rides in (credentials/store/change-rider.ts); none: the line is not owed. */
  store?: Pick<CredentialStore, 'update'> | undefined;
  /** How the caller signed in (`token`, `session`), as the write's audit line records it; null on an open route. */
  actor?: 'token' | 'session' | null | undefined;
}

/**
 * Runs a matched route: reads the body if asked, maps errors to JSON answers, audits a write. Never
 * puts a foreign error's text in a body (it may quote a secret): only AdminError, KeywayError and
 * ProxyError messages, which keyway writes itself.
 */
export async function dispatch(matched: Matched, req: IncomingMessage, res: ServerResponse, path: string, options: DispatchOptions): Promise<void> {
  const { route, params } = matched;
  const startedAt = performance.now();
  const client = req.socket.remoteAddress ?? 'unknown';
  let bodyRead: Promise<Record<string, unknown>> | undefined;
  const ctx: AdminContext = {
    req,
    res,
    params,
    query: new URL(req.url ?? '/', 'http://admin.invalid').searchParams,
    client,
    actor: options.actor ?? null,
    body: () => {
      bodyRead ??= readJsonBody(req);
      return bodyRead;
    },
  };
  let status: number;
  let touch: AuditTouch = {};
  let code: AdminCode | null = null;
  let message: string | undefined;
  const audits = !(route.method === 'GET' && route.audited !== true) && route.auditsItself !== true;
  // A write's store changes carry its line, owed until the line below is written (change-rider.ts):
  // a keyway killed in between writes it at its next start.
  const rider =
    audits && options.store !== undefined
      ? riderFor(
          {
            action: route.doc.operationId,
            client,
            ...(options.actor ? { actor: options.actor } : {}),
            agent: params['agent'] ?? null,
            grant: params['grant'] ?? null,
            method: route.method,
            path,
            host: options.host,
            port: options.port,
          },
          options.store,
        )
      : undefined;
  try {
    const reply = await (rider === undefined ? route.handle(ctx) : carryOwedLine(rider, async () => route.handle(ctx)));
    status = reply.status;
    touch = reply.audit ?? {};
    if (!('streamed' in reply)) sendJson(res, reply.status, reply.body, reply.headers);
  } catch (err) {
    const answer = errorAnswer(err);
    status = answer.status;
    code = answer.code;
    message = answer.message;
    if (!res.headersSent) sendError(res, answer.code, { message: answer.message, hint: answer.hint ?? null });
    else res.destroy();
  }
  if (!audits) return;
  const event: AuditEvent = {
    ts: new Date().toISOString(),
    // The id the owed record names: a keyway killed after this line and before settling is found by it, not written twice.
    id: rider?.lineId ?? randomUUID(),
    agent: touch.agent !== undefined ? touch.agent : (params['agent'] ?? null),
    grant: touch.grant !== undefined ? touch.grant : (params['grant'] ?? null),
    decision: 'admin',
    code,
    method: route.method,
    host: options.host,
    port: options.port,
    path,
    status,
    duration_ms: Math.round((performance.now() - startedAt) * 100) / 100,
    refreshed: false,
    client,
    action: route.doc.operationId,
    ...(options.actor ? { actor: options.actor } : {}),
    ...(message !== undefined ? { message } : {}),
  };
  // The change is made; a lost audit line is logged by the writer and turns the sink unhealthy, and
  // stays owed in the store for the next start.
  const written = await options.audit.write(event).then(
    () => true,
    () => false,
  );
  if (written && rider !== undefined && options.store !== undefined) await settleOwedLine(options.store, rider).catch(() => undefined);
}

/** What an unexpected failure answers: its own text may quote a secret, so the log has it instead. */
export const INTERNAL_ERROR_MESSAGE = 'the admin API failed; the keyway log has the reason';

/** Any error as the admin API answers it: keyway's own keep their code, message and hint; the status is the code's there. */
function errorAnswer(err: unknown): AdminError {
  if (err instanceof AdminError) return err;
  if (err instanceof ProxyError) return new AdminError(err.code, err.message, err.hint);
  // A grant's input of the wrong shape reads as any malformed body does.
  if (err instanceof MalformedInput) return new AdminError('bad_request', err.message);
  if (err instanceof KeywayError) return new AdminError(err.code, err.message);
  return new AdminError('internal_error', INTERNAL_ERROR_MESSAGE);
}

async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  // A form or text/plain body is what a cross-site page can send without a preflight: refused.
  if (type !== 'application/json') throw new AdminError('unsupported_media_type', 'send the body as Content-Type: application/json');
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw new AdminError('body_too_large', `the body is over ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new AdminError('body_too_large', `the body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch {
    // The parser's message may quote the body, which may hold a secret: not echoed.
    throw new AdminError('bad_request', 'the body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new AdminError('bad_request', 'the body must be a JSON object');
  return parsed as Record<string, unknown>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

/** An error answer `{"error":{code,…fields}}` with the code's admin status (errors/codes.ts). */
export function sendError(res: ServerResponse, code: AdminCode, fields: { message: string } & Record<string, unknown>, headers?: Record<string, string>): void {
  sendJson(res, ADMIN_STATUS_BY_CODE[code], { error: { code, ...fields } }, headers);
}
