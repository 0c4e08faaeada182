import type { Duplex } from 'node:stream';

/**
 * Answers still owed on each client connection. Node emits 'upgrade' as soon as it parses the
 * handshake, even behind pipelined requests whose answers are still being written: those keep
 * writing to the socket, so an upgrade's answer (raw bytes, not a ServerResponse) would land in
 * the middle of them. An upgrade waits its turn here; meanwhile nothing more is read from the
 * connection (Node leaves the socket paused until someone reads it).
 */
export class AnswersOwed {
  private readonly owed = new WeakMap<object, Map<Closing, { readonly complete: boolean }>>();

  /** An answer now owed on `socket` to `req`, settled when `res` closes (finished, or the connection died). */
  add(socket: object, req: { readonly complete: boolean }, res: Closing): void {
    let pending = this.owed.get(socket);
    if (!pending) {
      pending = new Map();
      this.owed.set(socket, pending);
    }
    pending.set(res, req);
    // 'on': a response closes once, and once's wrapper costs per request.
    res.on('close', () => pending.delete(res));
  }

  /**
   * Whether every request owed an answer on `socket` was read whole: their answers need nothing
   * more from the agent. Not so when the parser failed inside a request's body: that request is
   * the one refused, at once.
   */
  allRead(socket: object): boolean {
    return [...(this.owed.get(socket)?.values() ?? [])].every((req) => req.complete);
  }

  /**
   * Resolves once every answer owed on `socket` ahead of `res` is written (or the socket closed):
   * then `res` is the one Node writes to the connection. Answers are owed in the order requests
   * arrived (a Map keeps insertion order).
   */
  async settledBefore(socket: Duplex, res: Closing): Promise<void> {
    const pending = this.owed.get(socket);
    if (!pending) return;
    const answers = [...pending.keys()];
    const ahead = answers.slice(0, Math.max(0, answers.indexOf(res)));
    for (const answer of ahead) {
      if (socket.destroyed) return;
      if (!pending.has(answer)) continue;
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off('close', done);
          resolve();
        };
        answer.once('close', done);
        socket.once('close', done);
      });
    }
    // Node hands the connection to the next queued answer in the same turn as 'finish'.
    await new Promise((resolve) => setImmediate(resolve));
  }

  /** Resolves once every answer owed on `socket` is written, or the socket closed. */
  async settled(socket: Duplex): Promise<void> {
    const pending = this.owed.get(socket);
    // Bounded: each round waits for one answer to close or the socket to; answers are finite.
    for (let round = 0; pending && pending.size > 0 && !socket.destroyed && round < 10_000; round++) {
      const [first] = pending.keys();
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off('close', done);
          resolve();
        };
        first!.once('close', done);
        socket.once('close', done);
      });
      // Node hands the connection to the next queued answer in the same turn as 'finish'.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

interface Closing {
  once(event: 'close', listener: () => void): unknown;
  on(event: 'close', listener: () => void): unknown;
}
