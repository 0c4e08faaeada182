// New audit lines as they reach the file (or, with audit.sink: postgres, the table), for any number
// of listeners (the admin API's live streams). One follower reads for all of them, so ten open
// dashboards cost one poll.
//
// Read from the log rather than hooked into this process's writer: other keyway processes may
// share the home (or the database) and append their lines, and what a listener gets is then exactly
// what the log holds (already free of secrets, sealed, with its seq). The writer appends within ~10 ms of a
// response (file/writer.ts LOCK_GAP_MS); polling every 50 ms keeps a line's way to a listener under 100 ms.

import type { TailOptions } from './query.ts';
import type { StreamLine } from './source.ts';

export type AuditListener = (line: StreamLine) => void;

/** What the feed follows: an AuditSource's follow (the file, or the table's chains). */
export type AuditFollow = (opts: TailOptions) => AsyncIterable<StreamLine>;

export const FEED_POLL_MS = 50;

export class AuditFeed {
  readonly #tail: AuditFollow;
  readonly #pollMs: number;
  readonly #listeners = new Set<AuditListener>();
  #stop: AbortController | null = null;
  #running: Promise<void> | null = null;
  /** Resolves once the current follower is placed at the file's end (or has failed to be). */
  #positioned: Promise<void> = Promise.resolve();
  #markPositioned: () => void = () => undefined;
  /** The last failure to read the log, until a later read succeeds; listeners are told nothing. */
  #failure: Error | null = null;

  constructor(follow: AuditFollow, pollMs = FEED_POLL_MS) {
    this.#tail = follow;
    this.#pollMs = pollMs;
  }

  get listeners(): number {
    return this.#listeners.size;
  }

  get failure(): Error | null {
    return this.#failure;
  }

  /**
   * Hear every line appended from now on. The follower starts with the first listener (placed at the
   * file's end) and stops with the last. `ready` resolves once every line appended after it is sure
   * to be heard.
   */
  subscribe(listener: AuditListener): { ready: Promise<void>; unsubscribe: () => void } {
    this.#listeners.add(listener);
    if (this.#stop === null) this.#start();
    return {
      ready: this.#positioned,
      unsubscribe: () => {
        this.#listeners.delete(listener);
        if (this.#listeners.size === 0) this.#halt();
      },
    };
  }

  /** Stop following; listeners stay registered but hear nothing more. */
  async close(): Promise<void> {
    this.#listeners.clear();
    this.#halt();
    await this.#running;
  }

  #start(): void {
    const stop = new AbortController();
    this.#stop = stop;
    this.#positioned = new Promise((resolve) => (this.#markPositioned = resolve));
    const previous = this.#running ?? Promise.resolve();
    this.#running = previous.then(() => this.#follow(stop.signal));
  }

  #halt(): void {
    this.#markPositioned();
    this.#stop?.abort();
    this.#stop = null;
  }

  async #follow(signal: AbortSignal): Promise<void> {
    // A read error (the log's folder gone for a moment) restarts the follower after a pause, from
    // the end of the file as it then is: bounded retries are not needed, the listeners' lifetime is.
    while (!signal.aborted) {
      try {
        const follow = { lines: 0, follow: true, signal, intervalMs: this.#pollMs, onPositioned: this.#markPositioned };
        for await (const line of this.#tail(follow)) {
          this.#failure = null;
          for (const listener of this.#listeners) {
            try {
              listener(line);
            } catch {
              // One listener's failure (a socket gone mid-write) is its own; the others still hear.
            }
          }
        }
      } catch (err) {
        // A listener waiting for `ready` is not held up by a log that cannot be read.
        this.#markPositioned();
        this.#failure = err instanceof Error ? err : new Error(String(err));
        await new Promise((resolve) => setTimeout(resolve, 1_000).unref());
      }
    }
  }
}
