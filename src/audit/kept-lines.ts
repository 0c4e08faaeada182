// The lines a failed batch could not write, kept in memory (bounded) so they lead the next batch: a
// request forwarded before the failure showed still gets its line, in order, once the log is
// writable again.

import { lineCost } from './room.ts';

// How many lines (and bytes) a fault may leave waiting in memory. Past this, newer lines are dropped
// and counted: while unhealthy the proxy injects nothing, so those are refusals; the oldest lines,
// kept, are the ones that may belong to requests forwarded before the fault was seen.
const MAX_KEPT_LINES = 10_000;
const MAX_KEPT_BYTES = 8 * 1024 * 1024;

export class KeptLines {
  /** Oldest first. */
  #lines: string[] = [];
  #bytes = 0;

  get count(): number {
    return this.#lines.length;
  }

  get lines(): readonly string[] {
    return this.#lines;
  }

  clear(): void {
    this.#lines = [];
    this.#bytes = 0;
  }

  /** Adds a failed batch's lines behind those already kept, up to the bounds; `drop` gets the rest. */
  keep(bodies: readonly string[], drop: (body: string) => void): void {
    for (const body of bodies) {
      const bytes = Buffer.byteLength(body);
      if (this.#lines.length >= MAX_KEPT_LINES || this.#bytes + bytes > MAX_KEPT_BYTES) {
        drop(body);
        continue;
      }
      this.#lines.push(body);
      this.#bytes += bytes;
    }
  }
}

/** The room (room.ts) a set of lines takes in the log. */
export function costOf(bodies: readonly string[]): number {
  let cost = 0;
  for (const body of bodies) cost += lineCost(body);
  return cost;
}
