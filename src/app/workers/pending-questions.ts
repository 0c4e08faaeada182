// A worker's questions to the primary that wait for an answer (a rate verdict, a budget check): each
// gets a number, a timer and its promise's settlers, kept until the answer comes, the timer fires or
// the primary goes. The two shared counters (shared-rates.ts, shared-spend.ts) ask this way.

// A primary that does not answer in this long is gone or stuck: the question fails, and the stage
// that asked decides what that means (a request refused, never let through uncounted).
const ANSWER_TIMEOUT_MS = 5_000;

interface Waiting<T, C> {
  readonly context: C;
  readonly resolve: (value: T) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class PendingQuestions<T, C = undefined> {
  readonly #waiting = new Map<number, Waiting<T, C>>();
  #nextId = 1;
  #gone = false;

  /** Whether the primary is gone: no question is asked any more. */
  get gone(): boolean {
    return this.#gone;
  }

  /**
   * Numbers a question, keeps `context` for its answer, and sends it with `send(id)`. The promise
   * fails when the primary is gone, does not answer in time, or the send throws.
   */
  ask(context: C, send: (id: number) => void): Promise<T> {
    if (this.#gone) return Promise.reject(new Error('the primary process is gone'));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error('the primary process did not answer'));
      }, ANSWER_TIMEOUT_MS);
      this.#waiting.set(id, { context, resolve, reject, timer });
      try {
        send(id);
      } catch (err) {
        clearTimeout(timer);
        this.#waiting.delete(id);
        reject(err as Error);
      }
    });
  }

  /**
   * The answer to question `id`: `settle` turns it into the value (or throws to fail the question),
   * given the context kept when it was asked. An answer to no waiting question is dropped.
   */
  answer(id: number, settle: (context: C) => T): void {
    const waiting = this.#waiting.get(id);
    if (waiting === undefined) return;
    this.#waiting.delete(id);
    clearTimeout(waiting.timer);
    let value: T;
    try {
      value = settle(waiting.context);
    } catch (err) {
      waiting.reject(err as Error);
      return;
    }
    waiting.resolve(value);
  }

  /** The primary is gone: every question waiting, and every one after, fails. */
  primaryGone(): void {
    this.#gone = true;
    for (const [id, waiting] of this.#waiting) {
      clearTimeout(waiting.timer);
      this.#waiting.delete(id);
      waiting.reject(new Error('the primary process is gone'));
    }
  }
}
