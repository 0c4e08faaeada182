import type { Duplex } from 'node:stream';

/**
 * Answers still owed on each client connection. Node emits 'upgrade' as soon as it parses the
 * handshake, even behind pipelined requests whose answers are still being written: those keep
 * writing to the socket, so an upgrade's answer (raw bytes, not a ServerResponse) would land in
 * the middle of them. An upgrade waits its turn here; meanwhile nothing more is read from the
 * connection (Node leaves the socket paused until someone reads it).
 */
export class AnswersOwed {
  private readonly owed = new WeakMap<object, OwedOnConnection>();

  /** An answer now owed on `socket` to `req`, settled when `res` closes (finished, or the connection died). */
  add(socket: object, req: { readonly complete: boolean }, res: Closing): void {
    let pending = this.owed.get(socket);
    if (!pending) {
      pending = new OwedOnConnection();
      this.owed.set(socket, pending);
    }
    const answer: Owed = { res, req };
    pending.add(answer);
    // 'on': a response closes once, and once's wrapper costs per request.
    res.on('close', () => pending.remove(answer));
  }

  /**
   * Whether every request owed an answer on `socket` was read whole: their answers need nothing
   * more from the agent. Not so when the parser failed inside a request's body: that request is
   * the one refused, at once.
   */
  allRead(socket: object): boolean {
    return (this.owed.get(socket)?.inOrder() ?? []).every((answer) => answer.req.complete);
  }

  /**
   * Resolves once every answer owed on `socket` ahead of `res` is written (or the socket closed):
   * then `res` is the one Node writes to the connection. Answers are owed in the order requests
   * arrived.
   */
  async settledBefore(socket: Duplex, res: Closing): Promise<void> {
    const pending = this.owed.get(socket);
    if (!pending) return;
    const answers = pending.inOrder();
    const at = answers.findIndex((a) => a.res === res);
    const ahead = answers.slice(0, Math.max(0, at));
    for (const answer of ahead) {
      if (socket.destroyed) return;
      if (!pending.has(answer)) continue;
      await closeOf(answer.res, socket);
    }
    // Node hands the connection to the next queued answer in the same turn as 'finish'.
    await new Promise((resolve) => setImmediate(resolve));
  }

  /** Resolves once every answer owed on `socket` is written, or the socket closed. */
  async settled(socket: Duplex): Promise<void> {
    const pending = this.owed.get(socket);
    if (!pending) return;
    // Bounded: each round waits for one answer to close or the socket to; answers are finite.
    for (let round = 0; pending.first !== null && !socket.destroyed && round < 10_000; round++) {
      await closeOf(pending.first.res, socket);
      // Node hands the connection to the next queued answer in the same turn as 'finish'.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

/** Resolves when `res` closes or `socket` does. */
function closeOf(res: Closing, socket: Duplex): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      socket.off('close', done);
      resolve();
    };
    res.once('close', done);
    socket.once('close', done);
  });
}

interface Owed {
  readonly res: Closing;
  readonly req: { readonly complete: boolean };
}

/**
 * The answers owed on one connection, oldest first. A connection owes one answer at a time unless
 * its client pipelines: that one is held in a field. A Map per connection, set and deleted on every
 * request, reallocated its table as it went (a scavenge's survivors, in profiles).
 */
class OwedOnConnection {
  /** The oldest answer owed; null when none is. */
  first: Owed | null = null;
  /** The ones owed after it (pipelined requests), oldest first; null when there are none. */
  #rest: Owed[] | null = null;

  add(answer: Owed): void {
    if (this.first === null) this.first = answer;
    else if (this.#rest === null) this.#rest = [answer];
    else this.#rest.push(answer);
  }

  remove(answer: Owed): void {
    const rest = this.#rest;
    if (this.first === answer) {
      this.first = rest?.shift() ?? null;
    } else if (rest !== null) {
      const at = rest.indexOf(answer);
      if (at !== -1) rest.splice(at, 1);
    }
    if (rest?.length === 0) this.#rest = null;
  }

  has(answer: Owed): boolean {
    return this.first === answer || (this.#rest?.includes(answer) ?? false);
  }

  inOrder(): Owed[] {
    if (this.first === null) return [];
    return this.#rest === null ? [this.first] : [this.first, ...this.#rest];
  }
}

interface Closing {
  once(event: 'close', listener: () => void): unknown;
  on(event: 'close', listener: () => void): unknown;
}
