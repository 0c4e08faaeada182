// The lines a failed batch could not write, kept in memory (bounded) so they lead the next batch: a
// request forwarded before the failure showed still gets its line, in order, once the log is
// writable again.

// How many lines (and bytes) a fault may leave waiting in memory. Past this, newer lines are dropped
// and counted: while unhealthy the proxy injects nothing, so those are refusals; the oldest lines,
// kept, are the ones that may belong to requests forwarded before the fault was seen.
const MAX_KEPT_LINES = 10_000;
const MAX_KEPT_BYTES = 8 * 1024 * 1024;

export class KeptLines<T = string> {
  /** Oldest first. */
  #lines: T[] = [];
  #bytes = 0;
  /** The text of a kept item, whose size counts against the bound. */
  readonly #bodyOf: (item: T) => string;

  constructor(...bodyOf: T extends string ? [] : [(item: T) => string]) {
    this.#bodyOf = bodyOf[0] ?? ((item) => item as unknown as string);
  }

  get count(): number {
    return this.#lines.length;
  }

  get lines(): readonly T[] {
    return this.#lines;
  }

  /**
   * The kept lines, then `batch`: what an append writes. `batch` itself when nothing is kept (the
   * usual case); else a new list grown by push, never a spread (see linesInOrder).
   */
  before(batch: readonly T[]): readonly T[] {
    return this.#lines.length === 0 ? batch : linesInOrder(this.#lines, batch);
  }

  clear(): void {
    this.#lines = [];
    this.#bytes = 0;
  }

  /** Keeps only the items `keepIt` accepts (a retry found the others already written). */
  retain(keepIt: (item: T) => boolean): void {
    this.#lines = this.#lines.filter(keepIt);
    this.#bytes = this.#lines.reduce((n, item) => n + Buffer.byteLength(this.#bodyOf(item)), 0);
  }

  /** Adds a failed batch's lines behind those already kept, up to the bounds; `drop` gets the rest. */
  keep(items: readonly T[], drop: (item: T) => void): void {
    for (const item of items) {
      const bytes = Buffer.byteLength(this.#bodyOf(item));
      if (this.#lines.length >= MAX_KEPT_LINES || this.#bytes + bytes > MAX_KEPT_BYTES) {
        drop(item);
        continue;
      }
      this.#lines.push(item);
      this.#bytes += bytes;
    }
  }
}

/**
 * `first`, then `then`, in one new array grown by push. Every list of lines the audit writers seal
 * is made this way, by push (BatchQueue.pushAhead) or by `Array.prototype.map` (its batches), all
 * with V8's packed elements. A spread (`[...a, ...b]`) made a holey array in the proxy the first
 * time a write-ahead line found another queued before it (the first request after an idle spell),
 * and the sealer, the room's count and the held append, optimised for packed lists, were
 * deoptimised at once and ran interpreted for another ~3,000 calls (docs/perf/breakdown.md,
 * sixteenth pass).
 */
function linesInOrder<T>(first: readonly T[], then: readonly T[]): T[] {
  const lines: T[] = [];
  for (const line of first) lines.push(line);
  for (const line of then) lines.push(line);
  return lines;
}
