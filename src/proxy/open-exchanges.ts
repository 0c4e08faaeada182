import { ProxyError } from '../errors/index.ts';
import type { StagedRequest } from './stages/request.ts';

declare module './contract.ts' {
  // Added here, not in the contract: the books name the staged request, which names the
  // connection, which names the contract; declared there, the contract would close that circle.
  interface Transport {
    /** WebSockets and answers still open under a grant: ended by the sweep when the grant or login no longer stands. */
    readonly openExchanges: OpenExchanges;
  }
}

// What is still open under a grant: a WebSocket, an answer still coming (a server-sent event stream,
// a slow download). Each request is judged against the agent and the store as they are when it
// starts; these outlive that judgement, so the sweep (connection-sweep.ts) asks again, every half
// second, whether each still stands: its connection's sign-in, the grant admitting the agent on that
// host (a reload, `keyway grants rm`, `agents rm`), and the captured login its head resolved still in
// the store (`grants rm` on a capture grant, the agent's removal). One that no longer stands is ended
// (StagedRequest.revoke: a WebSocket closed with 1008, an answer cut) and its audit line says why.

/** A request's place on the books: a link in OpenExchanges' list (StagedRequest.openLink). */
export interface OpenLink {
  prev: OpenLink | undefined;
  next: OpenLink | undefined;
  readonly request: StagedRequest;
}

/**
 * The books as a list linked through the requests themselves, not a Set. With one process-long Set
 * that every request joined and left, V8 promoted about a fifth of everything keyway allocated
 * under s2's load to the old generation, with a mark-compact every half second; with this list,
 * ~1% (--trace-gc-nvp; docs/perf/breakdown.md, "The open-exchange set").
 */
export class OpenExchanges {
  #first: OpenLink | undefined = undefined;
  #size = 0;

  /** A request with a grant, from its last head stage until its response (or socket) closes. */
  add(request: StagedRequest): void {
    if (request.openLink !== undefined) return;
    const link: OpenLink = { prev: undefined, next: this.#first, request };
    if (this.#first !== undefined) this.#first.prev = link;
    this.#first = link;
    request.openLink = link;
    this.#size++;
  }

  delete(request: StagedRequest): void {
    const link = request.openLink;
    if (link === undefined) return;
    request.openLink = undefined;
    if (link.prev !== undefined) link.prev.next = link.next;
    else this.#first = link.next;
    if (link.next !== undefined) link.next.prev = link.prev;
    link.prev = undefined;
    link.next = undefined;
    this.#size--;
  }

  get size(): number {
    return this.#size;
  }

  /** Ends each open exchange that no longer stands; returns how many were ended. */
  sweep(): number {
    // Judged first, ended after: ending one may close others (its connection), which leave the books.
    const ending: Array<[StagedRequest, ProxyError]> = [];
    for (let link = this.#first; link !== undefined; link = link.next) {
      const error = revocation(link.request);
      if (error !== undefined) ending.push([link.request, error]);
    }
    let ended = 0;
    for (const [request, error] of ending) {
      if (request.openLink === undefined) continue; // closed meanwhile
      this.delete(request);
      ended++;
      request.revoke(error);
    }
    return ended;
  }
}

/** Why an open exchange may no longer go on, or undefined. Reads memory only (tables, store). */
export function revocation(request: StagedRequest): ProxyError | undefined {
  const { conn, grant } = request;
  if (grant === undefined) return undefined;
  const ended = conn.endReason();
  if (ended !== undefined) return connectionEnded(ended);
  const route = conn.grants();
  if (route.kind !== 'intercept' || !route.candidates.some((g) => g.id === grant.id)) {
    return new ProxyError(
      'host_not_allowed',
      `keyway closed what was open under grant "${grant.id}": it no longer admits agent "${conn.agent.id}" on ${conn.target.host}`,
      { grant: grant.id, hint: 'the grant was removed or taken from the agent; open a new connection if it was given back' },
    );
  }
  const keys = request.resolvedLogins;
  if (keys?.some((key) => conn.issuing.captures.find(key) === undefined)) {
    return new ProxyError('placeholder_refused', `keyway closed what was open under grant "${grant.id}": the captured login it used was dropped`, {
      grant: grant.id,
      hint: 'log in again through keyway for a new one',
    });
  }
  return undefined;
}

/** The error a connection closed for `reason` (Connection.endReason) is audited with. */
export function connectionEnded(reason: string): ProxyError {
  const aged = reason.includes('max_connection_age');
  return new ProxyError(aged ? 'request_timeout' : 'proxy_auth_required', `keyway closed the connection: ${reason}`, {
    hint: 'open a new connection with the current proxy credentials',
  });
}
