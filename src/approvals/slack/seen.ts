// The payloads a room has answered, remembered long enough that a replay finds them: Slack's
// signature admits a payload for five minutes, so ten cover it with room for clock skew. Bounded:
// past MAX keys the oldest go first (a replay that old is stale by its timestamp anyway).

const KEEP_MS = 10 * 60_000;
const MAX = 10_000;

export class SeenClicks {
  readonly #seen = new Map<string, number>();

  /** True the first time a key is offered (within KEEP_MS), false after. */
  first(key: string, nowMs: number): boolean {
    for (const [k, at] of this.#seen) {
      if (at + KEEP_MS > nowMs && this.#seen.size < MAX) break;
      this.#seen.delete(k);
    }
    if (this.#seen.has(key)) return false;
    this.#seen.set(key, nowMs);
    return true;
  }
}
