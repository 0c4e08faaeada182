import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import type { Agent } from '../credentials/agents.ts';
import { isOAuthGrant, type IssuedCredential } from '../credentials/credential-source.ts';
import type { Grant } from '../credentials/grants.ts';
import type { OutgoingRequest } from '../credentials/injectors/index.ts';
import { ProxyError } from '../errors/index.ts';
import { chooseGrant } from '../policy/access.ts';
import { checkLease } from '../policy/leases.ts';
import { evaluate, policyDenied } from '../policy/rules.ts';
import { patternMatches } from '../policy/domains.ts';
import { stripQuery } from '../audit/index.ts';
import { AuditDraft } from './audit-event.ts';
import { forward } from './forward.ts';
import { countHeader, GRANT_HEADER, upstreamRequestHeaders } from './headers.ts';
import { hasBody, readForReplay, type RequestBody } from './replay-body.ts';
import { secretNeedles } from './leak-guard.ts';
import { asProxyError, sendError } from './respond.ts';
import type { ProxyRuntime } from './runtime.ts';
import { formatAuthority, parseAuthority, type Target } from './target.ts';
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
}

/** The request as it will go upstream, and the credential on it (none when forwarded untouched). */
export interface PreparedRequest {
  grant: Grant | undefined;
  issued: IssuedCredential | undefined;
  outgoing: OutgoingRequest;
  /** A rule's max_body for a body of unknown size: enforced as it streams. */
  maxBodyBytes?: number | undefined;
}

/**
 * One request inside an intercepted connection (or an absolute-form http:// request):
 * prepareOutgoing (identify was done at CONNECT) -> forward -> [refresh + replay once on 401] ->
 * audit when the response closes.
 */
export async function handleExchange(runtime: ProxyRuntime, req: IncomingMessage, res: ServerResponse, ctx: ExchangeContext, path: string): Promise<void> {
  const { target } = ctx;
  const draft = new AuditDraft({
    method: req.method ?? null,
    host: target.host,
    port: target.port,
    client: ctx.client,
    agent: ctx.agent.id,
    path: stripQuery(path),
  });
  const aborter = new AbortController();
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    if (!res.writableFinished) {
      aborter.abort();
      draft.event.code ??= 'client_closed';
    }
    if (draft.event.status === null) draft.event.status = res.headersSent ? res.statusCode : null;
    draft.commit(runtime);
  };
  // A pipelined request whose answer waits behind another's gets no 'close' on its response when
  // the connection dies (Node closes only the response on the socket): without the socket's own
  // 'close' it would go upstream with no audit line.
  const socket = req.socket;
  socket.once('close', end);
  res.once('close', () => {
    socket.off('close', end);
    end();
  });
  try {
    const prepared = await prepareOutgoing(runtime, req, ctx, path, draft);
    await forwardWithReplay(runtime, req, res, ctx, path, prepared, draft, aborter.signal);
    draft.event.status = res.statusCode;
  } catch (err) {
    if (aborter.signal.aborted) return; // the client left; nothing to answer
    const error = asProxyError(err);
    if (error.code === 'internal_error') runtime.logger.error({ err: { name: (err as Error).name } }, 'request failed');
    draft.failed(error);
    if (res.headersSent) res.destroy();
    else sendError(res, error);
  }
}

/**
 * Forwards once. For an OAuth grant whose body could be kept (none, or at most 1 MiB), a 401 from
 * the upstream is withheld: the token is refreshed (joining any refresh in flight) and the request
 * sent once more; whatever the second answer is goes to the client.
 */
async function forwardWithReplay(runtime: ProxyRuntime, req: IncomingMessage, res: ServerResponse, ctx: ExchangeContext, path: string, prepared: PreparedRequest, draft: AuditDraft, signal: AbortSignal): Promise<void> {
  const { grant, issued } = prepared;
  const oauth = grant !== undefined && issued !== undefined && isOAuthGrant(grant);
  const source = prepared.maxBodyBytes === undefined ? req : capBody(req, prepared.maxBodyBytes, grant?.id);
  const body: RequestBody = oauth ? await readForReplay(req, source) : hasBody(req) ? { kind: 'streamed', stream: source } : { kind: 'none' };
  const canReplay = oauth && body.kind !== 'streamed';
  const authority = formatAuthority(ctx.target);
  let issuedNow = issued;
  const send = async (outgoing: OutgoingRequest, withhold: boolean) => {
    try {
      return await forward(runtime.upstream.dispatcher, res, {
        origin: `${ctx.scheme}://${authority}`,
        method: req.method ?? 'GET',
        path: outgoing.path,
        headers: outgoing.headers,
        body: body.kind === 'kept' ? body.body : body.kind === 'streamed' ? body.stream : null,
        signal,
        withhold: withhold ? (status) => status === 401 : undefined,
        onHead: (status) => {
          if (oauth && !canReplay && status === 401) draft.event['replay'] = 'skipped: body over 1 MiB';
        },
        redact: issuedNow ? { needles: secretNeedles(issuedNow.credential), onRedacted: (count) => (draft.event['leak_redacted'] = Number(draft.event['leak_redacted'] ?? 0) + count) } : undefined,
      });
    } catch (err) {
      throw upstreamError(err, authority, grant?.id);
    }
  };

  const outcome = await send(prepared.outgoing, canReplay);
  if (outcome === 'withheld' && grant && issued) {
    const again = await runtime.credentials.afterRejection(grant, issued.credential);
    issuedNow = again;
    const outgoing: OutgoingRequest = { headers: upstreamRequestHeaders(req.headers), path };
    grant.injector.apply(outgoing, again.credential);
    draft.event.refreshed = draft.event.refreshed || again.refreshed;
    draft.event['replayed'] = true;
    await send(outgoing, false);
  }
}

/** A rule's max_body on a body whose size was not declared: refused once it streams past the cap. */
function capBody(req: IncomingMessage, cap: number, grant: string | undefined): Readable {
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > cap) done(new ProxyError('policy_denied', `the request body passed the rule's max_body of ${cap} bytes`, { grant }));
      else done(null, chunk);
    },
  });
  req.pipe(counter);
  req.once('error', (err) => counter.destroy(err));
  return counter;
}

/**
 * The stages before forwarding, shared by plain requests and WebSocket upgrades:
 * checkHost -> chooseGrantFor -> requireAudit -> checkAccess (lease, rules) -> credential -> inject.
 */
export async function prepareOutgoing(runtime: ProxyRuntime, req: IncomingMessage, ctx: ExchangeContext, path: string, draft: AuditDraft): Promise<PreparedRequest> {
  checkHost(req, ctx.target);
  const grant = chooseGrantFor(runtime, req, ctx);
  const outgoing: OutgoingRequest = { headers: upstreamRequestHeaders(req.headers), path };
  requireAudit(runtime);
  if (!grant) {
    draft.event.decision = 'tunnel';
    return { grant, issued: undefined, outgoing };
  }
  draft.event.grant = grant.id;
  const maxBodyBytes = await checkAccess(runtime, req, ctx, grant, draft);
  const issued = await runtime.credentials.get(grant);
  draft.event.refreshed = issued.refreshed;
  grant.injector.apply(outgoing, issued.credential);
  runtime.grantUsed(grant.id);
  draft.event.decision = 'inject';
  return { grant, issued, outgoing, maxBodyBytes };
}

/**
 * Stage: may this agent use this grant for this request now? The lease (second clock), then the
 * agent's rules. A refusal names the rule; warn mode lets the request through and says so in the
 * audit line and the log.
 */
async function checkAccess(runtime: ProxyRuntime, req: IncomingMessage, ctx: ExchangeContext, grant: Grant, draft: AuditDraft): Promise<number | undefined> {
  const now = runtime.now();
  const lease = checkLease(ctx.agent, grant.id, runtime.leases.get(ctx.agent.id, grant.id), now);
  if (!lease.ok) throw lease.error;
  if (lease.startNew) await runtime.leases.start(lease.startNew);
  if (!ctx.agent.policy) return undefined;
  const length = Number(req.headers['content-length']);
  const request = {
    grant: grant.id,
    method: req.method ?? 'GET',
    path: draft.event.path ?? '/',
    source: ctx.client,
    bodyBytes: Number.isFinite(length) ? length : undefined,
    now,
  };
  const verdict = evaluate(ctx.agent.policy, request);
  if (verdict.rule !== undefined) draft.event['rule'] = verdict.rule;
  if (!verdict.allowed) throw policyDenied(verdict, request);
  if (verdict.outcome === 'warn') {
    draft.event['policy'] = 'warn';
    runtime.logger.warn({ agent: ctx.agent.id, grant: grant.id, rule: verdict.rule }, 'a rule in warn mode would refuse this request');
  }
  return verdict.enforced ? verdict.maxBodyBytes : undefined;
}

/** Stage: the Host header must name the CONNECT target; one Host header only. */
function checkHost(req: IncomingMessage, target: Target): void {
  if (countHeader(req.rawHeaders, 'host') > 1) throw new ProxyError('host_mismatch', 'the request has more than one Host header');
  const header = req.headers.host;
  if (header === undefined) return; // HTTP/1.0 without Host: the CONNECT target stands
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
function chooseGrantFor(runtime: ProxyRuntime, req: IncomingMessage, ctx: ExchangeContext): Grant | undefined {
  const route = runtime.tables().router.decide(ctx.agent, ctx.target.host, ctx.target.port);
  if (route.kind === 'refuse') throw route.error;
  if (route.kind === 'unmatched') {
    const allowTunnel = runtime.config.proxy.allow_tunnel;
    if (runtime.config.proxy.unmatched === 'deny' && !allowTunnel.some((p) => patternMatches(p, ctx.target.host, ctx.target.port))) {
      throw new ProxyError('host_not_allowed', `no grant covers ${ctx.target.host} and proxy.unmatched is deny`);
    }
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

function requireAudit(runtime: ProxyRuntime): void {
  if (!runtime.audit.healthy) {
    throw new ProxyError('audit_unavailable', 'the audit log cannot be written; nothing is sent until it can', {
      hint: 'check free disk space and the permissions of the audit path',
    });
  }
}
