// Counts kept in plain numbers on the request path and handed to prom-client only when scraped.
// prom-client's own Counter.inc(labels) builds a string key from the labels on every call; here a
// request costs a few Map lookups on label values it already has.

interface Cell {
  n: number;
}

/** Counts by up to three label values; unused trailing levels take ''. */
export class Tally {
  readonly #root = new Map<string, Map<string, Map<string, Cell>>>();

  add(a: string, b = '', c = '', n = 1): void {
    let second = this.#root.get(a);
    if (second === undefined) {
      second = new Map();
      this.#root.set(a, second);
    }
    let third = second.get(b);
    if (third === undefined) {
      third = new Map();
      second.set(b, third);
    }
    const cell = third.get(c);
    if (cell === undefined) third.set(c, { n });
    else cell.n += n;
  }

  /** Every count with its label values, for the scrape. */
  *entries(): Generator<[string, string, string, number]> {
    for (const [a, second] of this.#root) for (const [b, third] of second) for (const [c, cell] of third) yield [a, b, c, cell.n];
  }
}
