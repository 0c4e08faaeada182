import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { AuditEvent } from '../../audit/index.ts';
import { fetchesSecret, onBehalfOfAgent, replaysAfter401 } from '../../credentials/credential-source.ts';
import type { IssuedCredential } from '../../credentials/issuing/issued-credential.ts';
import type { Grant, RetryVerdict } from '../../credentials/grant.ts';
import type { Credential } from '../../credentials/material.ts';
import { lacksScope } from '../../oauth/insufficient-scope.ts';
import type { Connection } from '../connection.ts';
import type { RequestBody } from '../replay-body.ts';

/**
 * A withheld answer's body is kept up to this many bytes (a 401's is a line of JSON or HTML).
 * Past it, the upstream is paused and the credential decided then (#decideEarly): a refusal with
 * no new credential goes to the client whole, the kept bytes then the rest as they come; never
 * sent again with the credential it refused.
 */
export const WITHHELD_BODY = 64 * 1024;

// The audit line's `replay`: why a refused request was not sent again.
const SKIPPED_SIZE = 'skipped: body over 1 MiB';
const SKIPPED_BUDGET = 'skipped: replay memory full';
const SKIPPED_SWAPPED = 'skipped: the body carries the token';
const SKIPPED_SAME = 'skipped: the secret command printed the same value';
/** The same for a grant whose secret a secret source holds (Vault KV, Secrets Manager…): its own words, not a command's. */
const SKIPPED_SAME_SOURCE = 'skipped: the secret source gave the same value';
/** A 401 renewed the grant's token less than its renew_floor ago: no token call, the 401 goes to the client. */
const SKIPPED_FLOOR = 'skipped: renewed within renew_floor';

/** What goes up the second time: the request with the new credential on it. */
export type ResentRequest = Pick<Dispatcher.DispatchOptions, 'path' | 'headers' | 'body'>;

/** What the handler is told of the request it may send again, by the exchange that sends it. */
export interface RefusableRequest {
  readonly conn: Pick<Connection, 'agent' | 'issuing'>;
  readonly grant: Grant;
  /** The credential on the first request. */
  readonly issued: IssuedCredential;
  /** The normalised path and query, before a credential went on it: the type's retry rule reads it. */
  readonly path: string;
  readonly body: RequestBody;
  /** The grant's secret was put in the body (stage body-swap): a replay would carry the refused one. */
  readonly bodySwapped: boolean;
  readonly event: AuditEvent;
  /** The request once more with `again` on it (injected anew; a signing grant's signed anew over `body`). */
  resend(again: IssuedCredential, body: RequestBody): ResentRequest | Promise<ResentRequest>;
}

/** Whether a grant's answers go through the handler: it may replay after a 401, or its type reads every answer (a DPoP nonce). */
export function readsAnswers(grant: Grant): boolean {
  return grant.retry !== undefined || replaysAfter401(grant);
}

/**
 * A replay's own failure (no new credential, a signature refused), as the forward rejects with it:
 * keyway's, not the upstream's, so the exchange answers with the reason itself.
 */
export class ReplayFailed extends Error {
  readonly reason: unknown;
  constructor(reason: unknown) {
    super('the replay could not be made');
    this.reason = reason;
  }
}

/** The same credential: a replay with it would be refused as the first request was. */
function sameCredential(a: Credential, b: Credential): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * first: the first answer is awaited, and may be withheld; withheld: its body read and kept
 * (up to WITHHELD_BODY; past it, the credential decided with the upstream paused); deciding: a new credential asked for; passing: whatever comes goes to the client
 * (an answer not withheld, the replay's, or the withheld answer itself when no replay follows).
 */
type State = 'first' | 'withheld' | 'deciding' | 'passing';

/**
 * The replay after an upstream's refusal, in one place: an undici dispatch handler around the
 * upstream exchange, in the manner of undici's own RetryHandler. For a grant that replays (an OAuth
 * token refreshed, a minted token minted anew, a secret command run again: replaysAfter401) whose
 * body was kept, a refusal is withheld from the client (`handler` never hears of it): a 401 that
 * does not ask for a scope, or what the grant's type says to retry (grant.retry). A grant whose type
 * reads answers but whose secret gets nothing newer (one keyway holds) is replayed only where its
 * type says `same` (#withholds); every other answer goes to `handler` as it comes. Once the
 * refusal's body is read, a new credential is asked for (the type's verdict `same`: the same one,
 * signed anew) and the request sent once more through the same dispatcher; whatever the second
 * answer is goes to `handler`. No new credential (the same value again, a renewal within
 * renew_floor) means no second request: the withheld answer goes to `handler` as it came.
 *
 * forward() dispatches through it as through any dispatcher; `handler` sees one request and one
 * answer, and controls whichever upstream request is current through this object (the controller).
 */
export class ReplayOnRefusal implements Pick<Dispatcher, 'dispatch'>, Dispatcher.DispatchHandler, Dispatcher.DispatchController {
  readonly #via: Pick<Dispatcher, 'dispatch'>;
  readonly #request: RefusableRequest;
  #handler: Dispatcher.DispatchHandler | undefined;
  #options: Dispatcher.DispatchOptions | undefined;
  #state: State = 'first';
  /** The controller of the upstream request in flight; null between the refusal's end and the replay's start. */
  #upstream: Dispatcher.DispatchController | null = null;
  #aborted = false;
  #paused = false;
  #reason: Error | null = null;
  // 'withheld': the refusal, its body kept (up to WITHHELD_BODY, then while the upstream pauses), and the type's verdict.
  #status = 0;
  #headers: IncomingHttpHeaders = {};
  #kept: Buffer[] = [];
  #keptBytes = 0;
  #verdict: RetryVerdict;
  /** The refusal outgrew WITHHELD_BODY: its credential is being decided with its body unread (#decideEarly). */
  #early = false;
  /** The early-decided refusal ended meanwhile: its trailers. */
  #endedEarly: IncomingHttpHeaders | undefined;
  /** The first request's controller, once a replay took its place: what it still says is not heard. */
  #dropped: Dispatcher.DispatchController | undefined;
  /** The grant gets a new credential after a 401 (replaysAfter401); else its type only reads the answers. */
  readonly #replays: boolean;

  constructor(via: Pick<Dispatcher, 'dispatch'>, request: RefusableRequest) {
    this.#via = via;
    this.#request = request;
    this.#replays = replaysAfter401(request.grant);
    const { body, event } = request;
    // A body not kept for want of memory: said on the line whether or not a 401 comes, so an
    // operator sees the budget bite (proxy.max_replay_memory, max_replay_memory_per_agent).
    if (this.#replays && body.kind === 'streamed' && body.why === 'budget') event.replay = SKIPPED_BUDGET;
  }

  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.#options = options;
    this.#handler = handler;
    return this.#via.dispatch(options, this);
  }

  // As the controller `handler` holds: it acts on the upstream request in flight.

  get aborted(): boolean {
    return this.#aborted;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get reason(): Error | null {
    return this.#reason;
  }

  abort(reason: Error): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    const upstream = this.#upstream;
    if (upstream !== null && !upstream.aborted) upstream.abort(reason);
  }

  pause(): void {
    this.#paused = true;
    this.#upstream?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.#upstream?.resume();
  }

  // As the handler of the upstream requests (the first, and the replay).

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.#upstream = controller;
    if (this.#state === 'first') return this.#handler!.onRequestStart?.(this, context);
    // The replay's: under the handler's word so far (the client left, or its response is full).
    if (this.#aborted) controller.abort(this.#reason!);
    else if (this.#paused) controller.pause();
  }

  /** A piece of the request body went up: the handler hears it (model traffic reads it for its facts). */
  onBodySent(chunk: Buffer): void {
    this.#handler?.onBodySent?.(chunk);
  }

  /** The first request's body, or the replay's, went up whole: the handler hears it (model traffic counts a request the upstream had). */
  onRequestSent(): void {
    this.#handler?.onRequestSent?.();
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (this.#aborted || controller === this.#dropped) return; // the handler has settled: its abort has not landed yet
    const handler = this.#handler!;
    if (statusCode < 200) return handler.onResponseStart?.(this, statusCode, headers, statusMessage);
    const { grant, path, body, bodySwapped } = this.#request;
    // The grant's type reads every answer, the replay's and a streamed request's too (a nonce it learns).
    const verdict = grant.retry?.(statusCode, headers, `${this.#options!.origin}${path}`);
    if (this.#state !== 'first') return handler.onResponseStart?.(this, statusCode, headers, statusMessage);
    this.#state = 'passing';
    const unkept = bodySwapped ? 'swapped' : body.kind === 'streamed' ? 'streamed' : undefined;
    const refused = this.#withholds(statusCode, headers, verdict);
    if (refused && unkept === undefined) {
      this.#state = 'withheld';
      this.#status = statusCode;
      this.#headers = headers;
      this.#kept = [];
      this.#keptBytes = 0;
      this.#verdict = verdict;
      return;
    }
    handler.onResponseStart?.(this, statusCode, headers, statusMessage);
    // A response stage that refused the answer (the client gets keyway's 502) aborted it: no 401 relayed.
    // A grant that replays says so of every 401 it could not send again; one that only reads answers, of what its type asked to replay.
    const unreplayed = this.#replays ? statusCode === 401 : refused;
    if (unkept !== undefined && unreplayed && !this.#aborted) this.#refusedUnkept(unkept === 'swapped');
  }

  /**
   * Whether an answer is withheld for a replay. A type's verdict binds whoever issues the grant's
   * credential: `same` needs no new one (the same credential, signed anew over what the server
   * asked: a DPoP nonce, an HTTP Digest challenge), so it replays a secret keyway holds too;
   * `fresh` replays where a refusal gets a new credential (replaysAfter401), and where there is none
   * newer (a secret keyway holds; a signing type's, fetched) the answer goes to the client as it
   * came, as for `relay`. No verdict: keyway's default, a 401 that does not ask for a scope, for a
   * grant that replays.
   */
  #withholds(statusCode: number, headers: IncomingHttpHeaders, verdict: RetryVerdict): boolean {
    if (verdict === 'same') return true;
    if (!this.#replays) return false;
    return verdict !== undefined ? verdict === 'fresh' : statusCode === 401 && !lacksScope(headers['www-authenticate']);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#aborted || controller === this.#dropped) return;
    if (this.#state === 'passing') return this.#handler!.onResponseData?.(this, chunk);
    // Withheld for a replay: kept, for the case where no replay follows; past WITHHELD_BODY the
    // upstream is paused (what it had sent already still comes, and is kept) and the credential
    // decided now, so the refusal need not be kept whole.
    this.#kept.push(chunk);
    this.#keptBytes += chunk.length;
    if (this.#keptBytes > WITHHELD_BODY && !this.#early) {
      this.#early = true;
      this.#upstream?.pause();
      this.#decideEarly().catch((err: unknown) => this.#failed(err));
    }
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    if (this.#aborted || controller === this.#dropped) return;
    if (this.#state === 'passing') return this.#handler!.onResponseEnd?.(this, trailers);
    if (this.#early) {
      this.#endedEarly = trailers;
      return;
    }
    this.#state = 'deciding';
    this.#upstream = null;
    const kept = Buffer.concat(this.#kept);
    this.#kept = [];
    this.#replay(kept).catch((err: unknown) => this.#failed(err));
  }

  onResponseError(controller: Dispatcher.DispatchController, err: Error): void {
    if (controller === this.#dropped) return; // the refusal a replay replaced, aborted
    this.#handler!.onResponseError?.(this, err);
  }

  #failed(err: unknown): void {
    if (!this.#aborted) this.#handler!.onResponseError?.(this, new ReplayFailed(err));
  }

  /**
   * A refusal to a request that cannot go again (its body streamed, or carrying the token) goes to the
   * client; the audit line says why it was not replayed. The token was refused all the same: for a
   * body that carried it, or a secret source's value (dropped from the store for every process,
   * then fetched again), a new one is got now (single flight, as for a replay), so the agent's next
   * request carries it. Started as the 401 goes back, not before it; a failure is the next request's.
   */
  #refusedUnkept(swapped: boolean): void {
    const { conn, grant, issued, event, body } = this.#request;
    event.replay ??= swapped ? SKIPPED_SWAPPED : body.kind === 'streamed' && body.why === 'budget' ? SKIPPED_BUDGET : SKIPPED_SIZE;
    // Only a grant that replays gets a new credential after a refusal (a held secret has none newer).
    if (this.#replays && (swapped || grant.secretFrom !== undefined))
      conn.issuing.credentials.afterRejection(grant, issued.credential, onBehalfOfAgent(conn.agent)).catch(() => undefined);
  }

  /**
   * The credential after a refusal: a new one (`skipped` undefined), or the reason there is none
   * (the same value again, a renewal within renew_floor): a replay would then be refused as the
   * first request was, so none is made, whatever the refusal's size.
   */
  async #afterRefusal(): Promise<{ again: IssuedCredential; skipped: string | undefined }> {
    const { conn, grant, issued } = this.#request;
    const same = this.#verdict === 'same';
    const again = same ? issued : await conn.issuing.credentials.afterRejection(grant, issued.credential, onBehalfOfAgent(conn.agent));
    const skipped = again.floored
      ? SKIPPED_FLOOR
      : !same && fetchesSecret(grant) && sameCredential(again.credential, issued.credential)
        ? grant.secretFrom !== undefined
          ? SKIPPED_SAME_SOURCE
          : SKIPPED_SAME
        : undefined;
    if (skipped !== undefined) {
      if (skipped !== SKIPPED_FLOOR) this.#request.event.refreshed = true;
      this.#request.event.replay = skipped;
    }
    return { again, skipped };
  }

  /**
   * The withheld refusal's verdict: a new credential and one replay, or, when there is no new
   * credential to send, the refusal itself to the client. No new credential, so a replay would be
   * refused as the first request was: the upstream's own 401 goes to the client as it came, and
   * the upstream is not asked twice. A secret command that printed the same value again (a source
   * that holds it still), or a grant within its renew_floor (an API that refuses every token must
   * not cost a token call per request).
   */
  async #replay(withheld: Buffer): Promise<void> {
    const { again, skipped } = await this.#afterRefusal();
    if (skipped !== undefined) return this.#relayWithheld(withheld);
    await this.#resend(again);
  }

  /**
   * A refusal over WITHHELD_BODY, its upstream paused: the credential decided before its end. No
   * new one: the refusal goes to the client, what was kept then the rest as the upstream sends it.
   * A new one: the rest of the refusal is not wanted (its request is aborted) and the request goes
   * once more with the new credential.
   */
  async #decideEarly(): Promise<void> {
    const { again, skipped } = await this.#afterRefusal();
    if (this.#aborted) return;
    if (skipped !== undefined) {
      const kept = Buffer.concat(this.#kept);
      this.#kept = [];
      const ended = this.#endedEarly;
      if (ended !== undefined) return this.#relayWithheld(kept, ended);
      this.#state = 'passing';
      const handler = this.#handler!;
      handler.onResponseStart?.(this, this.#status, this.#headers, '');
      if (!this.#aborted) handler.onResponseData?.(this, kept);
      if (!this.#aborted && !this.#paused) this.#upstream?.resume();
      return;
    }
    const first = this.#upstream;
    this.#kept = [];
    this.#state = 'deciding';
    this.#upstream = null;
    if (first !== null && this.#endedEarly === undefined) {
      this.#dropped = first;
      first.abort(new Error('the refusal was replaced by a replay with a new credential'));
    }
    await this.#resend(again);
  }

  /** The request once more, with the new credential, through the same dispatcher: whatever it answers goes to the client. */
  async #resend(again: IssuedCredential): Promise<void> {
    const request = this.#request;
    const { event } = request;
    const resent = await request.resend(again, request.body);
    event.refreshed = event.refreshed || again.refreshed;
    event.replayed = true;
    if (this.#aborted) return; // the client left meanwhile
    this.#state = 'passing';
    try {
      this.#via.dispatch({ ...this.#options!, ...resent }, this);
    } catch (err) {
      this.#handler!.onResponseError?.(this, err as Error);
    }
  }

  /** The refusal, read whole, to the client after all: through the same response stages as any answer (the leak guard on its body). */
  #relayWithheld(body: Buffer, trailers: IncomingHttpHeaders = {}): void {
    if (this.#aborted) return;
    this.#state = 'passing';
    const handler = this.#handler!;
    handler.onResponseStart?.(this, this.#status, this.#headers, '');
    if (body.length > 0 && !this.#aborted) handler.onResponseData?.(this, body);
    // Paused or not, the rest is this one end: the client response buffers what it cannot write yet.
    if (!this.#aborted) handler.onResponseEnd?.(this, trailers);
  }
}
