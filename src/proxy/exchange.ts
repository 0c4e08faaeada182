import { caPendingRestart } from './upstream-ca.ts';
import type { IncomingHttpHeaders } from 'node:http';
import { fetchesSecret, onBehalfOfAgent, replaysAfter401, type IssuedCredential } from '../credentials/credential-source.ts';
import type { Grant } from '../credentials/grants.ts';
import type { OutgoingRequest } from '../credentials/injectors/index.ts';
import type { Credential } from '../credentials/material.ts';
import type { Dispatcher } from '../net/undici.ts';
import { upstreamError } from '../egress/upstream-errors.ts';
import { lacksScope } from '../oauth/insufficient-scope.ts';
import type { AgentShare } from './agent-load.ts';
import { type ClientRequest, type ClientResponse, isHttp2Request, responseCompleted, writeHead } from './client-message.ts';
import { LocalAnswer } from './stages/capture-body.ts';
import type { Connection } from './connection.ts';
import { ClientDeparture, forward, type ForwardObserver, type ForwardOutcome, type WithheldAnswer } from './forward.ts';
import { answerOnce } from './withheld-relay.ts';
import { dropRange } from './headers.ts';
import { secretNeedles, withSignatures } from './leak-guard/index.ts';
import type { HeldNeedles } from './leak-guard/held.ts';
import type { OpenExchanges } from './open-exchanges.ts';
import type { Redact } from './leak-guard/response-guard.ts';
import { hasBody, type ReplayHolder, type RequestBody } from './replay-body.ts';
import { asProxyError } from './respond.ts';
import { runBodyStages, runHeadStages } from './stages/index.ts';
import { injectInto } from './stages/inject.ts';
import { outgoingHeaders } from './stages/outgoing.ts';
import { StagedRequest } from './stages/request.ts';
import { draftOn, refuseOnClose } from './refuse.ts';
import { formatAuthority } from './target.ts';

/**
 * One request inside an intercepted connection (or an absolute-form http:// request): admit ->
 * head stages -> body stages -> forward -> [refresh + replay once on 401] -> audit when the
 * response closes. `rawTarget` is the request target as the client sent it.
 */
export function handleExchange(conn: Connection, req: ClientRequest, res: ClientResponse, rawTarget: string): Promise<void> {
  return new Exchange(conn, req, res, rawTarget).run();
}

// Shared by every exchange: they carry nothing of a request's own.
const NO_BODY: RequestBody = Object.freeze({ kind: 'none' });
const NO_NEEDLES: Buffer[] = [];
/** The audit line's `replay`: why this request could not be replayed after a 401. */
const SKIPPED_SIZE = 'skipped: body over 1 MiB';
const SKIPPED_BUDGET = 'skipped: replay memory full';
const SKIPPED_SAME = 'skipped: the secret command printed the same value';
/** The same for a grant whose secret a secret source holds (Vault KV, Secrets Manager…): its own words, not a command's. */
const SKIPPED_SAME_SOURCE = 'skipped: the secret source gave the same value';
/** A 401 renewed the grant's token less than its renew_floor ago: no token call, the 401 goes to the client. */
const SKIPPED_FLOOR = 'skipped: renewed within renew_floor';

/** The same credential: a replay with it would be refused as the first request was. */
function sameCredential(a: Credential, b: Credential): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
const SKIPPED_SWAPPED = 'skipped: the body carries the token';

/**
 * One exchange's state and the callbacks the stages call back on (the response's close, the
 * upstream's head, a redaction), as one object: as closures they were an allocation each, per
 * request, and showed in allocation profiles.
 */
class Exchange extends StagedRequest implements ForwardObserver, Redact, ReplayHolder {
  readonly #res: ClientResponse;
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
  /** The withheld answer asked, through the grant's type, for a retry with the same credential signed anew (grant.retry). */
  #retrySame = false;
  #sentAt = 0;
  /** The 401 withheld for a replay, read whole when small: relayed when no replay follows. */
  #withheldAnswer: WithheldAnswer | undefined;
  /** The leak guard's needles for the credential on the request now in flight. */
  needles: Buffer[] = NO_NEEDLES;
  /** The real values keyway holds for the agent, looked for in the answer whatever the request carried. */
  held: HeldNeedles | undefined;

  constructor(conn: Connection, req: ClientRequest, res: ClientResponse, rawTarget: string) {
    // The path is set once normalised (stage path): the audit names the path sent, never the raw one.
    super(conn, req, draftOn(conn, req.method ?? null, conn.client), rawTarget);
    this.holder = this;
    this.#res = res;
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
    this.#openIn?.delete(this);
    this.#leave();
    const { event } = this.draft;
    const res = this.#res;
    if (!responseCompleted(res)) {
      this.#departure.leave();
      event.code ??= 'client_closed';
    }
    if (event.status === null) event.status = res.headersSent ? res.statusCode : null;
    // Under a bytes quota: what went up and came back, counted whether the client stayed or not.
    const quota = this.byteQuota;
    if (quota !== undefined) this.conn.runtime.quotas.addBytes(quota.scopes, quota.sent + this.#departure.relayed, this.conn.runtime.now());
    this.draft.commit(this.conn.runtime);
  };

  /** The books this request is on while open (stage open-exchange): left in #onClose. */
  #openIn: Pick<OpenExchanges, 'add' | 'delete'> | undefined;

  override holdOpenIn(open: Pick<OpenExchanges, 'add' | 'delete'>): void {
    if (this.#ended) return;
    this.#openIn = open;
    open.add(this);
  }

  override onClientGone(listener: () => void): () => void {
    if (this.#ended) {
      queueMicrotask(listener);
      return () => undefined;
    }
    this.#res.once('close', listener);
    return () => void this.#res.off('close', listener);
  }

  async run(): Promise<void> {
    const req = this.req;
    const res = this.#res;
    const draft = this.draft;
    try {
      this.#enter();
      await runHeadStages(this);
      await this.#forwardWithReplay();
      draft.event.status = res.statusCode;
    } catch (err) {
      if (this.#departure.left) return; // the client left; nothing to answer
      if (err instanceof LocalAnswer) return this.#answerLocally(err);
      const error = asProxyError(err);
      if (error.code === 'internal_error') this.conn.runtime.logger.error({ err: { name: (err as Error).name } }, 'request failed');
      // Refused before the body was read (or past a cap): answer, then close rather than read on.
      // Not a 429, whose client is told to come back: closing with its body still coming resets
      // the connection before the client reads the Retry-After. Node reads the rest and drops it.
      if (!req.complete && !isHttp2Request(req) && error.code !== 'rate_limited' && error.code !== 'quota_exhausted')
        (res as { shouldKeepAlive: boolean }).shouldKeepAlive = false;
      // A response whose head already went out is cut (respond.ts); the line is written on close.
      refuseOnClose(draft, error, res);
    } finally {
      this.#releaseHeld(); // the body is needed no more, whatever happened
      // A refresh's lock, if its answer never came to be captured (refused, failed, cut short).
      this.login?.close();
    }
  }

  /**
   * A refresh with a captured refresh token another request already exchanged (stage capture-body):
   * that exchange's answer again (placeholders only), from keyway, with nothing sent upstream.
   */
  #answerLocally({ answer }: LocalAnswer): void {
    const res = this.#res;
    const body = Buffer.from(answer.body, 'utf8');
    const head: Record<string, string> = { 'content-length': String(body.length), 'cache-control': 'no-store' };
    if (answer.content_type !== undefined) head['content-type'] = answer.content_type;
    writeHead(res, answer.status, head);
    res.end(body);
    this.draft.event.status = answer.status;
    this.draft.event.captured_again = true;
  }

  /** Stage "admit": one more request of this agent in flight, unless it has its limit already. */
  #enter(): void {
    const runtime = this.conn.runtime;
    const agent = this.conn.agent.id;
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
    this.conn.runtime.load.leave(share);
  }

  /** Reserves body bytes to keep for a replay (readForReplay), within the agent's and keyway's budget. */
  hold(bytes: number): boolean {
    const share = this.#share;
    if (share === undefined || !this.conn.runtime.load.hold(share, bytes)) return false;
    this.#held += bytes;
    return true;
  }

  #releaseHeld(share = this.#share): void {
    if (this.#held === 0 || share === undefined) return;
    this.conn.runtime.load.release(share, this.#held);
    this.#held = 0;
  }

  /**
   * Forwards once. For an OAuth grant (or one whose secret a command prints: replaysAfter401) whose
   * body could be kept (none, or at most 1 MiB), a 401 from the upstream is withheld: the token is
   * refreshed, or the command run again (joining any run in flight), and the request sent once more;
   * whatever the second answer is goes to the client.
   */
  async #forwardWithReplay(): Promise<void> {
    const { grant, issued } = this;
    const req = this.req;
    const oauth = grant !== undefined && issued !== undefined && replaysAfter401(grant);
    const staged = runBodyStages(this, hasBody(req) ? { kind: 'streamed', stream: req, why: 'size' } : NO_BODY);
    const body = staged instanceof Promise ? await staged : staged;
    this.#oauth = oauth;
    // A body the token was swapped into (stage body-swap) would go again with the token just refused.
    this.#canReplay = oauth && body.kind !== 'streamed' && !this.bodySwapped;
    // A body not kept for want of memory: said on the line whether or not a 401 comes, so an
    // operator sees the budget bite (proxy.max_replay_memory, max_replay_memory_per_agent).
    if (oauth && body.kind === 'streamed' && body.why === 'budget') this.draft.event.replay = SKIPPED_BUDGET;
    const outcome = await this.#send(this.outgoing!, body, issued, this.#canReplay, grant);
    if (outcome === 'withheld' && grant && issued) {
      const again = this.#retrySame ? issued : await this.conn.runtime.credentials.afterRejection(grant, issued.credential, onBehalfOfAgent(this.conn.agent));
      const withheld = this.#withheldAnswer;
      this.#withheldAnswer = undefined;
      // No new credential, so a replay would be refused as the first request was: the upstream's own
      // 401 goes to the client as it came, and the upstream is not asked twice. A secret command that
      // printed the same value again (a source that holds it still), or a grant within its
      // renew_floor (an API that refuses every token must not cost a token call per request). A 401
      // too big to have been kept (over WITHHELD_BODY) is the exception: sent again, as refused.
      const skipped = again.floored
        ? SKIPPED_FLOOR
        : !this.#retrySame && fetchesSecret(grant) && sameCredential(again.credential, issued.credential)
          ? grant.secretFrom !== undefined
            ? SKIPPED_SAME_SOURCE
            : SKIPPED_SAME
          : undefined;
      if (skipped !== undefined && withheld !== undefined) {
        if (skipped !== SKIPPED_FLOOR) this.draft.event.refreshed = true;
        this.draft.event.replay = skipped;
        await this.#send(this.outgoing!, NO_BODY, issued, false, grant, answerOnce(withheld));
        return;
      }
      const outgoing: OutgoingRequest = { headers: outgoingHeaders(req), path: this.requestPath };
      injectInto(outgoing, grant, again);
      let replayed = body;
      if (this.signing !== undefined) {
        // A grant that signs: the replay is signed anew (a fresh proof, the nonce the server asked for).
        this.outgoing = outgoing;
        this.issued = again;
        const signed = this.signing.sign(body);
        replayed = signed instanceof Promise ? await signed : signed;
      }
      const { event } = this.draft;
      event.refreshed = event.refreshed || again.refreshed;
      event.replayed = true;
      await this.#send(outgoing, replayed, again, false, grant);
    }
  }

  async #send(
    outgoing: OutgoingRequest,
    body: RequestBody,
    issued: IssuedCredential | undefined,
    withhold: boolean,
    grant: Grant | undefined,
    dispatcher?: Dispatcher,
  ): Promise<ForwardOutcome> {
    const ctx = this.conn;
    const authority = formatAuthority(ctx.target);
    this.#withholding = withhold;
    this.#sentAt = performance.now();
    const own = issued ? secretNeedles(issued.credential) : NO_NEEDLES;
    this.needles = issued ? withSignatures(own, this.signing?.signatures) : NO_NEEDLES;
    const held = ctx.issuing.held;
    if (issued && grant) held?.noteServed(grant.id, issued.credential);
    const holding = held?.forAgent(ctx.agent);
    // Nothing held but this request's own credential: its own search covers it.
    this.held = holding?.sole === own ? undefined : holding;
    // A Range window onto a token stored upstream would hand it out in slices no search finds
    // (leak-guard/gate.ts finds slices at a body's edges, not inside it): an agent that could read
    // back a captured login's token gets whole answers, whatever a grant's allow_range says of its
    // own secret (that one stays the grant's choice).
    if (this.held?.captured) dropRange(outgoing.headers);
    try {
      // A grant's client certificate (mTLS) means its own connections: never the shared pool's.
      const via = dispatcher ?? this.conn.runtime.upstream.dispatcherFor(issued ? grant : undefined);
      return await forward(via, this.#res, {
        origin: `${ctx.scheme}://${authority}`,
        method: this.req.method ?? 'GET',
        path: outgoing.path,
        headers: outgoing.headers,
        body: body.kind === 'kept' ? body.body : body.kind === 'streamed' ? body.stream : null,
        departure: this.#departure,
        observer: this,
        redact: issued || this.held ? this : undefined,
        grant: issued ? grant : undefined,
        hints: this,
        mcpList: this.mcp?.list,
        login: this.login,
        // A refresh through a captured token: the server rotates it whether the client stays or not,
        // so its answer is read and captured all the same (the next refresh with the old one gets it).
        keepGoing: this.login?.finishesWithoutClient === true,
      });
    } catch (err) {
      throw upstreamError(err, authority, grant?.id, issued !== undefined && grant?.clientCertificate !== undefined, caPendingRestart(this.conn.runtime));
    }
  }

  /**
   * A 401 is held back for a refresh and one replay, unless it says the token lacks a scope: a
   * fresh token would lack it too, so the answer goes to the client with a re-consent hint instead.
   */
  withhold(status: number, headers: IncomingHttpHeaders): boolean {
    // The grant's type reads every answer, the replay's and a streamed request's too (a nonce it learns).
    const retry = this.grant?.retry;
    const verdict =
      retry === undefined || this.issued === undefined
        ? undefined
        : retry(status, headers, `${this.conn.scheme}://${formatAuthority(this.conn.target)}${this.requestPath}`);
    if (!this.#withholding) return false;
    this.#retrySame = verdict === 'same';
    if (verdict !== undefined) return verdict !== 'relay';
    return status === 401 && !lacksScope(headers['www-authenticate']);
  }

  onHead(status: number): void {
    this.draft.upstreamSeconds = (performance.now() - this.#sentAt) / 1000;
    if (this.#oauth && !this.#canReplay && status === 401) {
      this.draft.event.replay ??= this.bodySwapped ? SKIPPED_SWAPPED : SKIPPED_SIZE;
      // Not replayed, but the token was refused all the same: refreshed now (single flight, as for
      // a replay), so the agent's next request carries a fresh one. A failure is the next request's.
      // A secret source's value too: dropped from the store for every process, then fetched again
      // (started as the 401 goes back, not before it: the head is relayed now, this cannot wait).
      if ((this.bodySwapped || this.grant?.secretFrom !== undefined) && this.grant && this.issued)
        this.conn.issuing.credentials.afterRejection(this.grant, this.issued.credential, onBehalfOfAgent(this.conn.agent)).catch(() => undefined);
    }
  }

  onWithheld(answer: WithheldAnswer | undefined): void {
    this.#withheldAnswer = answer;
  }

  onHint(message: string, hint: string): void {
    const { event } = this.draft;
    event.message = message;
    event.hint = hint;
  }

  onRedacted(count: number): void {
    const { event } = this.draft;
    event.leak_redacted = (event.leak_redacted ?? 0) + count;
  }
}
