import { ProxyError } from '../errors/index.ts';
import type { OpenBooks, OpenEntry, OpenLink } from './contract.ts';

// What is still open under a grant: a WebSocket, an answer still coming (a server-sent event stream,
// a slow download). Each request is judged against the agent and the store as they are when it
// starts; these outlive that judgement, so the sweep (connection-sweep.ts) asks again, every half
// second, whether each still stands: its connection's sign-in, the grant admitting the agent on that
// host (a reload, `keyway grants rm`, `agents rm`), and the captured login its head resolved still in
// the store (`grants rm` on a capture grant, the agent's removal). One that no longer stands is ended
// (StagedRequest.revoke: a WebSocket closed with 1008, an answer cut) and its audit line says why.
// The books name no request: what they hold is contract.ts's OpenEntry, and whether one still stands
// is the judge's (stages/open-exchange.ts revocation), given by the composition root.

/**
 * The books as a list linked through the requests themselves, not a Set. With one process-long Set
 * that every request joined and left, V8 promoted about a fifth of everything keyway allocated
 * under s2's load to the old generation, with a mark-compact every half second; with this list,
 * ~1% (--trace-gc-nvp; docs/perf/breakdown.md, "The open-exchange set").
 */
export class OpenExchanges<Entry extends OpenEntry = OpenEntry> implements OpenBooks {
  #first: OpenLink | undefined = undefined;
  #size = 0;
  readonly #judge: (entry: Entry) => ProxyError | undefined;

  /** `judge`: why an entry may no longer go on, or undefined; it reads memory only (tables, store). */
  constructor(judge: (entry: Entry) => ProxyError | undefined) {
    this.#judge = judge;
  }

  /** A request with a grant, from its last head stage until its response (or socket) closes. */
  add(request: Entry): void {
    if (request.openLink !== undefined) return;
    const link: OpenLink = { prev: undefined, next: this.#first, request };
    if (this.#first !== undefined) this.#first.prev = link;
    this.#first = link;
    request.openLink = link;
    this.#size++;
  }

  delete(request: OpenEntry): void {
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
    const ending: Array<[OpenEntry, ProxyError]> = [];
    for (let link = this.#first; link !== undefined; link = link.next) {
      // Only add puts a request on the books, and it takes an Entry.
      const error = this.#judge(link.request as Entry);
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

/** The error a connection closed for `reason` (Connection.endReason) is audited with. */
export function connectionEnded(reason: string): ProxyError {
  const aged = reason.includes('max_connection_age');
  return new ProxyError(aged ? 'request_timeout' : 'proxy_auth_required', `keyway closed the connection: ${reason}`, {
    hint: 'open a new connection with the current proxy credentials',
  });
}
