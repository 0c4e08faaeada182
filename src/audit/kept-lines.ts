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
