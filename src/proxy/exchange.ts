import type { Agent } from '../credentials/agents.ts';
import { isOAuthGrant, type IssuedCredential } from '../credentials/credential-source.ts';
import type { Grant } from '../credentials/grants.ts';
import type { OutgoingRequest } from '../credentials/injectors/index.ts';
import { ProxyError } from '../errors/index.ts';
import { chooseGrant } from '../policy/access.ts';
import { refuseUnmatched } from './route-connect.ts';
import { normaliseRequestTarget } from '../policy/request-path.ts';
import type { AgentShare } from './agent-load.ts';
import { AuditDraft } from './audit-event.ts';
import { checkAccess } from './check-access.ts';
import { type ClientRequest, type ClientResponse, cutResponse, isHttp2Request, responseCompleted } from './client-message.ts';
import { ClientDeparture, forward, type ForwardObserver, type ForwardOutcome } from './forward.ts';
import { checkAuthority } from './http2-request.ts';
import { countHeader, dropRange, GRANT_HEADER, upstreamRequestHeaders } from './headers.ts';
import { hasBody, readForReplay, type ReplayHolder, type RequestBody } from './replay-body.ts';
import { secretNeedles } from './leak-guard.ts';
import type { Redact } from './response-guard.ts';
import { asProxyError, sendError } from './respond.ts';
import type { RefusedInside } from './refuse-inside.ts';
import type { ProxyRuntime } from './runtime.ts';
import { formatAuthority, originFormOf, parseAuthority, splitAbsoluteForm, type Target } from './target.ts';
import { upstreamError } from './upstream-errors.ts';

/** What is known about a request before its own headers are read. */
export interface ExchangeContext {
  readonly agent: Agent;
  /** The CONNECT target, or the host of an absolute-form URL. */
  readonly target: Target;
  /** How keyway talks to the upstream: https inside intercepted TLS, http otherwise. */
  readonly scheme: 'https' | 'http';
  readonly client: string;
  /** A CONNECT to keyway.internal: keyway answers itself (see self-check.ts). */
  readonly selfCheck?: boolean | undefined;
  /** Refused at CONNECT for a host keyway intercepts: every request gets this answer (refuse-inside.ts). */
  readonly refused?: RefusedInside | undefined;
}

/** The request as it will go upstream, and the credential on it (none when forwarded untouched). */
export interface PreparedRequest {
  grant: Grant | undefined;
  issued: IssuedCredential | undefined;
  outgoing: OutgoingRequest;
  /** The normalised path and query, as sent upstream before any credential went on it. */
  requestPath: string;
  /** A body of undeclared size held whole to check a rule's max_body: sent as is. */
  heldBody?: Buffer | undefined;
}

/**
 * One request inside an intercepted connection (or an absolute-form http:// request):
 * prepareOutgoing (identify was done at CONNECT) -> forward -> [refresh + replay once on 401] ->
 * audit when the response closes.
 */
export function handleExchange(runtime: ProxyRuntime, req: ClientRequest, res: ClientResponse, ctx: ExchangeContext, path: string): Promise<void> {
  return new Exchange(runtime, req, res, ctx).run(path);
}

// Shared by every exchange: they carry nothing of a request's own.
const NO_BODY: RequestBody = Object.freeze({ kind: 'none' });
const NO_NEEDLES: Buffer[] = [];
/** The audit line's `replay`: why this request could not be replayed after a 401. */
const SKIPPED_SIZE = 'skipped: body over 1 MiB';
const SKIPPED_BUDGET = 'skipped: replay memory full';

/**
 * One exchange's state and the callbacks the stages call back on (the response's close, the
 * upstream's head, a redaction), as one object: as closures they were an allocation each, per
 * request, and showed in allocation profiles.
 */
class Exchange implements ForwardObserver, Redact, ReplayHolder {
  readonly #runtime: ProxyRuntime;
  readonly #req: ClientRequest;
  readonly #res: ClientResponse;
  readonly #ctx: ExchangeContext;
  readonly #draft: AuditDraft;
  readonly #departure = new ClientDeparture();
  /** Listened to only by a pipelined response queued behind another's (see the constructor). */
  readonly #socket: ClientRequest['socket'] | undefined;
  #ended = false;
  /** The agent's slot taken for this request (agent-load.ts), and the body bytes it keeps for a replay. */
  #share: AgentShare | undefined;
  #held = 0;
  // Set for each forward: whether a 401 is withheld for a replay, and when the request went up.
  #oauth = false;
  #canReplay = false;
  #withholding = false;
  #sentAt = 0;
  /** The leak guard's needles for the credential on the request now in flight. */
  needles: Buffer[] = NO_NEEDLES;

  constructor(runtime: ProxyRuntime, req: ClientRequest, res: ClientResponse, ctx: ExchangeContext) {
    this.#runtime = runtime;
    this.#req = req;
    this.#res = res;
    this.#ctx = ctx;
    this.#draft = new AuditDraft({
      method: req.method ?? null,
      host: ctx.target.host,
      port: ctx.target.port,
      client: ctx.client,
      agent: ctx.agent.id,
      path: null, // set once the path is normalised: the audit names the path sent, never the raw one
    });
    // A pipelined request whose answer waits behind another's gets no 'close' on its response when
    // the connection dies (Node closes only the response that holds the socket): without the
    // socket's own 'close' it would go upstream with no audit line. Only such a queued response
    // (no socket yet) listens on the socket: a listener added and removed per request showed in
    // profiles. An HTTP/2 stream always closes its response.
    this.#socket = isHttp2Request(req) || res.socket !== null ? undefined : req.socket;
    this.#socket?.once('close', this.#onClose);
    // 'on', not 'once': a response closes once, and once's wrapper costs per request.
    res.on('close', this.#onClose);
  }

  readonly #onClose = (): void => {
    this.#socket?.off('close', this.#onClose);
    if (this.#ended) return;
    this.#ended = true;
    this.#leave();
    const { event } = this.#draft;
    const res = this.#res;
    if (!responseCompleted(res)) {
      this.#departure.leave();
      event.code ??= 'client_closed';
    }
    if (event.status === null) event.status = res.headersSent ? res.statusCode : null;
    this.#draft.commit(this.#runtime);
  };

  async run(path: string): Promise<void> {
    const req = this.#req;
    const res = this.#res;
    const draft = this.#draft;
    try {
      this.#enter();
      const prepared = await prepareOutgoing(this.#runtime, req, this.#ctx, path, draft, this);
      await this.#forwardWithReplay(prepared);
      draft.event.status = res.statusCode;
    } catch (err) {
      if (this.#departure.left) return; // the client left; nothing to answer
      const error = asProxyError(err);
      if (error.code === 'internal_error') this.#runtime.logger.error({ err: { name: (err as Error).name } }, 'request failed');
      draft.failed(error);
      // Refused before the body was read (or past a cap): answer, then close rather than read on.
      // Not a 429, whose client is told to come back: closing with its body still coming resets
      // the connection before the client reads the Retry-After. Node reads the rest and drops it.
      if (!req.complete && !isHttp2Request(req) && error.code !== 'rate_limited') (res as { shouldKeepAlive: boolean }).shouldKeepAlive = false;
      if (res.headersSent) cutResponse(res);
      else sendError(res, error);
    } finally {
      this.#releaseHeld(); // the body is needed no more, whatever happened
    }
  }

  /** Stage "admit": one more request of this agent in flight, unless it has its limit already. */
  #enter(): void {
    const runtime = this.#runtime;
    const agent = this.#ctx.agent.id;
    const share = runtime.load.admit(agent);
    // The response may have closed while the request waited to run: give the slot back at once.
    if (this.#ended) return void runtime.load.leave(share);
    this.#share = share;
  }

  #leave(): void {
    const share = this.#share;
    if (share === undefined) return;
    this.#share = undefined;
    this.#releaseHeld(share);
    this.#runtime.load.leave(share);
  }

  /** Reserves body bytes to keep for a replay (readForReplay), within the agent's and keyway's budget. */
  hold(bytes: number): boolean {
    const share = this.#share;
    if (share === undefined || !this.#runtime.load.hold(share, bytes)) return false;
    this.#held += bytes;
    return true;
  }

  #releaseHeld(share = this.#share): void {
    if (this.#held === 0 || share === undefined) return;
    this.#runtime.load.release(share, this.#held);
    this.#held = 0;
  }

  /**
   * Forwards once. For an OAuth grant whose body could be kept (none, or at most 1 MiB), a 401 from
   * the upstream is withheld: the token is refreshed (joining any refresh in flight) and the request
   * sent once more; whatever the second answer is goes to the client.
   */
  async #forwardWithReplay(prepared: PreparedRequest): Promise<void> {
    const { grant, issued } = prepared;
    const req = this.#req;
    const oauth = grant !== undefined && issued !== undefined && isOAuthGrant(grant);
    const body: RequestBody = prepared.heldBody
      ? { kind: 'kept', body: prepared.heldBody }
      : oauth
        ? await readForReplay(req, this)
        : hasBody(req)
          ? { kind: 'streamed', stream: req, why: 'size' }
          : NO_BODY;
    this.#oauth = oauth;
    this.#canReplay = oauth && body.kind !== 'streamed';
    // A body not kept for want of memory: said on the line whether or not a 401 comes, so an
    // operator sees the budget bite (proxy.max_replay_memory, max_replay_memory_per_agent).
    if (oauth && body.kind === 'streamed' && body.why === 'budget') this.#draft.event.replay = SKIPPED_BUDGET;
    const outcome = await this.#send(prepared.outgoing, body, issued, this.#canReplay, grant);
    if (outcome === 'withheld' && grant && issued) {
      const again = await this.#runtime.credentials.afterRejection(grant, issued.credential);
      const outgoing: OutgoingRequest = { headers: outgoingHeaders(req), path: prepared.requestPath };
      grant.injector.apply(outgoing, again.credential);
      if (!grant.allowRange) dropRange(outgoing.headers);
      const { event } = this.#draft;
      event.refreshed = event.refreshed || again.refreshed;
      event.replayed = true;
      await this.#send(outgoing, body, again, false, grant);
    }
  }

  async #send(
    outgoing: OutgoingRequest,
    body: RequestBody,
    issued: IssuedCredential | undefined,
    withhold: boolean,
    grant: Grant | undefined,
  ): Promise<ForwardOutcome> {
    const ctx = this.#ctx;
    const authority = formatAuthority(ctx.target);
    this.#withholding = withhold;
    this.#sentAt = performance.now();
    this.needles = issued ? secretNeedles(issued.credential) : NO_NEEDLES;
    try {
      return await forward(this.#runtime.upstream.dispatcher, this.#res, {
        origin: `${ctx.scheme}://${authority}`,
        method: this.#req.method ?? 'GET',
        path: outgoing.path,
        headers: outgoing.headers,
        body: body.kind === 'kept' ? body.body : body.kind === 'streamed' ? body.stream : null,
        departure: this.#departure,
        observer: this,
        redact: issued ? this : undefined,
      });
    } catch (err) {
      throw upstreamError(err, authority, grant?.id);
    }
  }

  withhold(status: number): boolean {
    return this.#withholding && status === 401;
  }

  onHead(status: number): void {
    this.#draft.upstreamSeconds = (performance.now() - this.#sentAt) / 1000;
    if (this.#oauth && !this.#canReplay && status === 401) this.#draft.event.replay ??= SKIPPED_SIZE;
  }

  onRedacted(count: number): void {
    const { event } = this.#draft;
    event.leak_redacted = (event.leak_redacted ?? 0) + count;
  }
}

/**
 * The stages before forwarding, shared by plain requests and WebSocket upgrades:
 * normalisePath -> checkHost -> chooseGrantFor -> requireAudit -> checkAccess (lease, rules, held
 * body) -> credential -> inject. `rawTarget` is the request target as the client sent it.
 */
export async function prepareOutgoing(
  runtime: ProxyRuntime,
  req: ClientRequest,
  ctx: ExchangeContext,
  rawTarget: string,
  draft: AuditDraft,
  holder?: ReplayHolder,
): Promise<PreparedRequest> {
  checkVersion(req);
  const { path, query } = normalisePath(originForm(rawTarget, ctx.target), draft);
  checkHost(req, ctx.target);
  const grant = chooseGrantFor(runtime, req, ctx);
  const requestPath = `${path}${query}`;
  const outgoing: OutgoingRequest = { headers: outgoingHeaders(req), path: requestPath };
  requireAudit(runtime);
  if (!grant) {
    draft.event.decision = 'tunnel';
    return { grant, issued: undefined, outgoing, requestPath };
  }
  draft.event.grant = grant.id;
  const heldBody = await checkAccess(runtime, req, { agent: ctx.agent, grant, client: ctx.client, path, query, holder }, draft);
  const issued = await runtime.credentials.get(grant);
  draft.event.refreshed = issued.refreshed;
  reserveAuditLine(runtime, draft);
  grant.injector.apply(outgoing, issued.credential);
  if (!grant.allowRange) dropRange(outgoing.headers);
  runtime.grantUsed(grant.id);
  draft.event.decision = 'inject';
  return { grant, issued, outgoing, requestPath, heldBody };
}

/**
 * The request's headers as they go upstream. An HTTP/2 client's `TE: trailers` (the one TE HTTP/2
 * allows) is kept: gRPC clients send it and gRPC servers may refuse a call without it.
 */
function outgoingHeaders(req: ClientRequest): Record<string, string | string[]> {
  const headers = upstreamRequestHeaders(req.headers);
  if (isHttp2Request(req) && req.headers.te === 'trailers') headers['te'] = 'trailers';
  return headers;
}

/**
 * Stage: HTTP/1.x only. A request line without a version (`GET /x{y/1.1`) is HTTP/0.9 to llhttp:
 * no headers by that protocol's rules, yet Node reads some, and an upstream may answer it in
 * HTTP/0.9 (no status line, or an `HTTP/0.9 200` one). It is a typo or an attack, never an agent.
 */
function checkVersion(req: ClientRequest): void {
  if (req.httpVersionMajor !== 1 && !isHttp2Request(req))
    throw new ProxyError('bad_request', `HTTP/${req.httpVersionMajor}.${req.httpVersionMinor} requests are not proxied; send HTTP/1.1`);
}

/**
 * Stage: requests inside a tunnel are origin-form. An absolute-form target (RFC 9112 3.2.2) is
 * taken as its path, as sent (splitAbsoluteForm: the same reading as a plain request's), if its
 * authority is the connection's target: the target's authority would win over Host at an upstream
 * that reads it, so one naming another host is refused. Anything else is passed on as is, for the
 * path stage to refuse.
 */
function originForm(rawTarget: string, target: Target): string {
  const absolute = splitAbsoluteForm(rawTarget);
  if (!absolute) return rawTarget;
  const { scheme } = absolute;
  let named: Target | undefined;
  try {
    named = parseAuthority(absolute.authority, scheme === 'https' ? 443 : scheme === 'http' ? 80 : undefined);
  } catch {
    named = undefined;
  }
  if (!named || named.host !== target.host || named.port !== target.port) {
    throw new ProxyError('host_mismatch', `the request target names another authority than the connection's target ${formatAuthority(target)}`);
  }
  return originFormOf(absolute.rest);
}

/**
 * Stage: one reading of the path, judged and sent (src/policy/request-path.ts); what cannot be put
 * in one safe form is refused. The audit line gets the normalised path, never the raw target.
 */
function normalisePath(rawTarget: string, draft: AuditDraft): { path: string; query: string } {
  const target = normaliseRequestTarget(rawTarget);
  if (!target.ok) {
    draft.event.path = null;
    throw new ProxyError('bad_request', `the request path cannot be normalised safely: ${target.reason}`);
  }
  draft.event.path = target.path;
  return target;
}

/**
 * Stage: the Host header must name the CONNECT target; one Host header only. HTTP/1.1 requires Host
 * (RFC 9112 3.2): keyway answers its absence itself, with an audit line, instead of letting Node's
 * parser answer a bare 400. An HTTP/1.0 request without Host is judged on the CONNECT target.
 */
function checkHost(req: ClientRequest, target: Target): void {
  if (isHttp2Request(req)) return checkAuthority(req, target);
  if (countHeader(req.rawHeaders, 'host') > 1) throw new ProxyError('host_mismatch', 'the request has more than one Host header');
  const header = req.headers.host;
  if (header === undefined) {
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return;
    throw new ProxyError('bad_request', 'an HTTP/1.1 request must carry a Host header');
  }
  // The spellings clients send (the target's own name, with or without its port) need no parse.
  // Not for an IPv6 target: its Host header must be bracketed, which the parse checks.
  if (!target.host.includes(':') && (header === target.host || header === `${target.host}:${target.port}`)) return;
  let host: Target;
  try {
    host = parseAuthority(header, target.port);
  } catch {
    throw new ProxyError('host_mismatch', 'the Host header is not a valid host');
  }
  if (host.host !== target.host || host.port !== target.port) {
    // The message names the target only: header values never go back into an error body.
    throw new ProxyError('host_mismatch', `the Host header differs from the connection's target ${formatAuthority(target)}`);
  }
}

/** Stage: which grant, if any, this request uses. undefined means "forward untouched". */
function chooseGrantFor(runtime: ProxyRuntime, req: ClientRequest, ctx: ExchangeContext): Grant | undefined {
  const route = runtime.tables().router.decide(ctx.agent, ctx.target.host, ctx.target.port);
  if (route.kind === 'refuse') throw route.error;
  if (route.kind === 'unmatched') {
    refuseUnmatched(runtime, ctx.target);
    return undefined;
  }
  const requested = req.headers[GRANT_HEADER];
  const grant = chooseGrant(route.candidates, Array.isArray(requested) ? requested[0] : requested);
  if (ctx.scheme === 'http' && !grant.allowHttp) {
    throw new ProxyError('insecure_upstream', `grant "${grant.id}" is never sent over plain HTTP`, {
      grant: grant.id,
      hint: `use https://, or set allow_http: true on grant "${grant.id}" if the upstream has no TLS`,
    });
  }
  return grant;
}

/**
 * Stage, just before the credential goes on: the audit writer must promise this request's line room
 * on disk (src/audit/room.ts), so a disk filling up refuses requests before any line fails. No I/O:
 * the writer refreshes its figures off the request path.
 */
function reserveAuditLine(runtime: ProxyRuntime, draft: AuditDraft): void {
  if (draft.reserved) return; // prepareOutgoing runs once per request; never reserve twice
  if (!runtime.audit.reserveLine()) {
    throw new ProxyError(
      'audit_unavailable',
      "the audit log cannot take this request's line (unwritable, too little room left, or its database unreachable); nothing is sent until it can",
      {
        hint: 'check free disk space (keyway keeps about 1 MiB in reserve), file-size limits, and the permissions of the audit path',
      },
    );
  }
  draft.reserved = true;
}

function requireAudit(runtime: ProxyRuntime): void {
  if (!runtime.audit.healthy) {
    throw new ProxyError('audit_unavailable', 'the audit log cannot be written; nothing is sent until it can', {
      hint: 'check free disk space and the permissions of the audit path',
    });
  }
}
