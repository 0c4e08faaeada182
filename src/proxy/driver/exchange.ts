import type { Readable } from 'node:stream';
import { caPendingRestart } from '../upstream-ca.ts';
import type { IssuedCredential } from '../../credentials/issuing/issued-credential.ts';
import type { OutgoingRequest } from '../../credentials/injectors/index.ts';
import { upstreamError } from '../../egress/upstream-errors.ts';
import { keepsConnection } from '../../errors/index.ts';
import type { AgentShare } from '../agent-load.ts';
import { type ClientRequest, type ClientResponse, isHttp2Request, responseCompleted, writeHead } from '../client-message.ts';
import type { Connection } from '../connection.ts';
import { ClientDeparture, forward, type ForwardObserver, guardedRequestHeaders } from './forward.ts';
import { dropRange } from '../headers.ts';
import { secretNeedles, withSignatures } from '../leak-guard/index.ts';
import type { HeldNeedles } from '../leak-guard/held.ts';
import type { OpenBooks } from '../contract.ts';
import type { Redact } from '../leak-guard/response-guard.ts';
import { hasBody, type ReplayHolder, type RequestBody } from '../replay-body.ts';
import { readsAnswers, ReplayFailed, ReplayOnRefusal, type ResentRequest } from './replay-on-refusal.ts';
import { asProxyError } from '../respond.ts';
import { type ClosedAnswer, LocalAnswer } from '../stages/hooks.ts';
import { runBodyStages, runCloseStages, runEndedHooks, runHeadStages } from '../stages/index.ts';
import { injectInto } from '../stages/inject.ts';
import { outgoingHeaders } from '../stages/outgoing.ts';
import { StagedRequest } from '../stages/request.ts';
import { draftOn, refuseOnClose } from '../refuse.ts';
import { formatAuthority } from '../target.ts';

/**
 * One request inside an intercepted connection (or an absolute-form http:// request): admit ->
 * head stages -> body stages -> send (through the replay handler, which may send once more after a
 * refusal: replay-on-refusal.ts) -> the close stages (the audit line last) when the response
 * closes. `rawTarget` is the request target as the client sent it.
 */
export function handleExchange(conn: Connection, req: ClientRequest, res: ClientResponse, rawTarget: string): Promise<void> {
  return new Exchange(conn, req, res, rawTarget).run();
}

// Shared by every exchange: they carry nothing of a request's own.
const NO_BODY: RequestBody = Object.freeze({ kind: 'none' });
const NO_NEEDLES: Buffer[] = [];

/** A request body as undici sends it. */
function bodyOf(body: RequestBody): Buffer | Readable | null {
  return body.kind === 'kept' ? body.body : body.kind === 'streamed' ? body.stream : null;
}

/**
 * One exchange's state and the callbacks the stages call back on (the response's close, the
 * upstream's head, a redaction), as one object: as closures they were an allocation each, per
 * request, and showed in allocation profiles.
 */
class Exchange extends StagedRequest implements ForwardObserver, Redact, ReplayHolder, ClosedAnswer {
  readonly #res: ClientResponse;
  readonly #departure = new ClientDeparture();
  /** Listened to only by a pipelined response queued behind another's (see the constructor). */
  readonly #socket: ClientRequest['socket'] | undefined;
  #ended = false;
  /** The agent's slot taken for this request (agent-load.ts), and the body bytes it keeps for a replay. */
  #share: AgentShare | undefined;
  #held = 0;
  /** When the request (or its replay) went up: the upstream's answer is timed from here. */
  #sentAt = 0;
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
    // What the request counts against, then its audit line (stages/index.ts CLOSE_STAGES).
    runCloseStages(this, this);
  };

  /** The agent got the whole answer (ClosedAnswer, read by the close stages). */
  get answerCompleted(): boolean {
    return responseCompleted(this.#res);
  }

  /** Response body bytes relayed to the agent so far. */
  get relayed(): number {
    return this.#departure.relayed;
  }

  /** The books this request is on while open (stage open-exchange): left in #onClose. */
  #openIn: Pick<OpenBooks, 'add' | 'delete'> | undefined;

  override holdOpenIn(open: Pick<OpenBooks, 'add' | 'delete'>): void {
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
      await this.#forward();
      draft.event.status = res.statusCode;
    } catch (err) {
      if (this.#departure.left) return; // the client left; nothing to answer
      if (err instanceof LocalAnswer) return this.#answerLocally(err);
      const error = asProxyError(err);
      if (error.code === 'internal_error') this.conn.runtime.logger.error({ err: { name: (err as Error).name } }, 'request failed');
      // Refused before the body was read (or past a cap): answer, then close rather than read on.
      // Not a code that keeps the connection (a 429, whose client is told to come back: closing with
      // its body still coming resets the connection before the client reads the answer): Node
      // reads the rest and drops it (errors/codes.ts).
      if (!req.complete && !isHttp2Request(req) && !keepsConnection(error.code)) (res as { shouldKeepAlive: boolean }).shouldKeepAlive = false;
      // A response whose head already went out is cut (respond.ts); the line is written on close.
      refuseOnClose(draft, error, res);
    } finally {
      this.#releaseHeld(); // the body is needed no more, whatever happened
      // What a stage held for the run (stages/index.ts RUN_ENDED_HOOKS).
      runEndedHooks(this);
    }
  }

  /** An answer keyway gives itself (a stage threw it: stages/hooks.ts), with nothing sent upstream. */
  #answerLocally({ status, contentType, body: text, audit }: LocalAnswer): void {
    const res = this.#res;
    const body = Buffer.from(text, 'utf8');
    const head: Record<string, string> = { 'content-length': String(body.length), 'cache-control': 'no-store' };
    if (contentType !== undefined) head['content-type'] = contentType;
    writeHead(res, status, head);
    res.end(body);
    this.draft.event.status = status;
    Object.assign(this.draft.event, audit);
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
   * Forwards the request. A grant whose answers the replay handler reads (one replayed after a 401,
   * or whose type reads every answer) goes through it: a refusal may be withheld and the request
   * sent once more with a new credential (replay-on-refusal.ts).
   */
  async #forward(): Promise<void> {
    const staged = runBodyStages(this, hasBody(this.req) ? { kind: 'streamed', stream: this.req, why: 'size' } : NO_BODY);
    const body = staged instanceof Promise ? await staged : staged;
    const { conn, grant, issued } = this;
    const outgoing = this.outgoing!;
    this.#prepareSend(outgoing, issued);
    try {
      // A grant's client certificate (mTLS) means its own connections: never the shared pool's.
      const upstream = conn.runtime.upstream.dispatcherFor(issued ? grant : undefined);
      const via =
        grant !== undefined && issued !== undefined && readsAnswers(grant)
          ? new ReplayOnRefusal(upstream, {
              conn,
              grant,
              issued,
              path: this.requestPath,
              body,
              bodySwapped: this.bodySwapped,
              event: this.draft.event,
              resend: (again, kept) => this.#resend(again, kept),
            })
          : upstream;
      await forward(via, this.#res, {
        origin: conn.origin,
        method: this.req.method ?? 'GET',
        path: outgoing.path,
        headers: outgoing.headers,
        body: bodyOf(body),
        departure: this.#departure,
        observer: this,
        redact: issued || this.held ? this : undefined,
        grant: issued ? grant : undefined,
        hints: this,
        // An answer a stage must read to its end whatever the client does (StagedRequest.finishesWithoutClient).
        keepGoing: this.finishesWithoutClient,
        staged: this,
      });
    } catch (err) {
      if (err instanceof ReplayFailed) throw err.reason; // keyway's failure, not the upstream's
      throw upstreamError(
        err,
        formatAuthority(conn.target),
        grant?.id,
        issued !== undefined && grant?.clientCertificate !== undefined,
        caPendingRestart(conn.runtime),
      );
    }
  }

  /**
   * The request once more with `again` on it, for the replay handler: injected anew, and a signing
   * grant's signed anew (a fresh proof, the nonce the server asked for).
   */
  async #resend(again: IssuedCredential, body: RequestBody): Promise<ResentRequest> {
    const outgoing: OutgoingRequest = { headers: outgoingHeaders(this.req), path: this.requestPath };
    injectInto(outgoing, this.grant!, again);
    let resent = body;
    if (this.signing !== undefined) {
      this.outgoing = outgoing;
      this.issued = again;
      const signed = this.signing.sign(body);
      resent = signed instanceof Promise ? await signed : signed;
    }
    this.#prepareSend(outgoing, again);
    return { path: outgoing.path, headers: guardedRequestHeaders(outgoing.headers, this), body: bodyOf(resent) };
  }

  /**
   * Readies a send with `issued` on the request: the leak guard's needles (the credential, the
   * signatures made, what else keyway holds for the agent), and the clock of the upstream's answer.
   */
  #prepareSend(outgoing: OutgoingRequest, issued: IssuedCredential | undefined): void {
    const conn = this.conn;
    const grant = this.grant;
    this.#sentAt = performance.now();
    const own = issued ? secretNeedles(issued.credential) : NO_NEEDLES;
    this.needles = issued ? withSignatures(own, this.signing?.signatures) : NO_NEEDLES;
    const held = conn.runtime.held;
    if (issued && grant) held?.noteServed(grant.id, issued.credential);
    const holding = held?.forAgent(conn.agent);
    // Nothing held but this request's own credential: its own search covers it.
    this.held = holding?.sole === own ? undefined : holding;
    // A Range window onto a token stored upstream would hand it out in slices no search finds
    // (leak-guard/gate.ts finds slices at a body's edges, not inside it): an agent that could read
    // back a captured login's token gets whole answers, whatever a grant's allow_range says of its
    // own secret (that one stays the grant's choice).
    if (this.held?.captured) dropRange(outgoing.headers);
  }

  onHead(status: number): void {
    this.draft.upstreamSeconds = (performance.now() - this.#sentAt) / 1000;
    // What the upstream said of the credential keyway put on: a 401 shows in `grants list` and doctor.
    if (this.issued !== undefined && this.grant !== undefined) this.conn.issuing.grantAnswered(this.grant.id, status);
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
