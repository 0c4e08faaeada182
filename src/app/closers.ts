// Start is all or nothing and stop undoes it: each part registers how to close it as it opens,
// and they close newest first (the listeners before the clients they forward to, the store last).

/** One part to close, named so that a failure to close can say which. */
interface Closer {
  readonly name: string;
  readonly close: () => unknown;
}

export class Closers {
  readonly #list: Closer[] = [];

  /** Registers a part just opened: it closes before every part registered earlier. */
  add(name: string, close: () => unknown): void {
    this.#list.push({ name, close });
  }

  /**
   * Closes every part registered, newest first, each once the one before has settled. A part
   * that fails to close keeps none of the rest open; the names of those that failed are returned.
   * A later call closes only what was added since.
   */
  async closeAll(): Promise<string[]> {
    const failed: string[] = [];
    for (const { name, close } of this.#list.splice(0).reverse()) {
      try {
        await close();
      } catch {
        failed.push(name);
      }
    }
    return failed;
  }
}
