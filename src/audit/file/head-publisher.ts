// Writes the authenticated chain head (../head.ts) after batches, off the lock and at a bounded rate.

import { setTimeout as sleep } from 'node:timers/promises';
import { writeHead } from '../head.ts';
import type { ChainHead } from '../head.ts';

// How often, at most, the authenticated chain head is rewritten while lines keep coming.
const HEAD_INTERVAL_MS = 250;

/**
 * Head files are written after the lock is released, to keep the lock short, and one at a time per
 * writer; if several batches finish meanwhile, only the newest head is written. Another process may
 * still replace it with an older head: a head behind the file is valid, it only weakens tail checks
 * until the next batch. A failed head write does not fail the lines, which are already in the log.
 */
export class HeadPublisher {
  readonly #headPath: string;
  readonly #headKey: Buffer;
  /** True once the writer is closing: the head is then written without waiting out the interval. */
  readonly #closing: () => boolean;
  #headLatest: ChainHead | null = null;
  #headLoop: Promise<void> | null = null;
  #headWrittenAt = Number.NEGATIVE_INFINITY;

  constructor(headPath: string, headKey: Buffer, closing: () => boolean) {
    this.#headPath = headPath;
    this.#headKey = headKey;
    this.#closing = closing;
  }

  publish(head: ChainHead): void {
    this.#headLatest = head;
    this.#headLoop ??= this.#writeHeads();
  }

  /** Resolves once the heads published so far are written (or failed). */
  async settled(): Promise<void> {
    await this.#headLoop;
  }

  async #writeHeads(): Promise<void> {
    for (let head = this.#headLatest; head !== null; head = this.#headLatest) {
      // At most one head write per HEAD_INTERVAL_MS under load: a head file per batch cost two
      // file operations per request on sequential traffic. The price: a tail cut within the last
      // interval before a crash goes unnoticed by verify. close() writes the final head at once.
      const wait = this.#headWrittenAt + HEAD_INTERVAL_MS - performance.now();
      if (wait > 0 && !this.#closing()) await sleep(wait);
      head = this.#headLatest ?? head;
      this.#headLatest = null;
      this.#headWrittenAt = performance.now();
      await writeHead(this.#headPath, this.#headKey, head).catch(() => undefined);
    }
    this.#headLoop = null;
  }
}
