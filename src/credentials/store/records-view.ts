// What both store backends (store.ts: the file; postgres-store.ts: the database) share in memory:
// reads over one decrypted store, and the queue that runs their updates and re-reads one at a time.

import type { OpenedStore } from './format.ts';

/** Reads over one decrypted store. Replaced whole when the store changes, never edited. */
export class RecordsView {
  readonly state: OpenedStore;
  // Sorted once, on the first entries() call after a change: reads far outnumber changes.
  #sortedIds: string[] | undefined;

  constructor(state: OpenedStore) {
    this.state = state;
  }

  /** The value stored under `id`. Values are deep-frozen: they are shared, and change only via update(). */
  get<T>(id: string): T | undefined {
    return this.state.records.get(id)?.value as T | undefined;
  }

  /** Records whose id starts with `prefix`, sorted by id. */
  entries<T>(prefix: string): Array<[string, T]> {
    this.#sortedIds ??= [...this.state.records.keys()].sort();
    const out: Array<[string, T]> = [];
    for (const id of this.#sortedIds) {
      if (id.startsWith(prefix)) out.push([id, this.state.records.get(id)?.value as T]);
    }
    return out;
  }
}

/**
 * The read side both backends share: the records in memory (replaced whole when the store
 * changes), how often they changed, and why the last re-read failed, if it did.
 */
export abstract class StoreReads {
  protected view: RecordsView;
  protected changes = 0;
  protected lastReadError: Error | undefined;

  constructor(state: OpenedStore) {
    this.view = new RecordsView(state);
  }

  /**
   * Why the store could not be re-read the last time a change was seen (gone, damaged, another
   * key); undefined while it reads. Memory keeps the last good contents either way. Only a watched
   * store re-reads.
   */
  get readError(): Error | undefined {
    return this.lastReadError;
  }

  /** Increments whenever the in-memory contents change: a reload of another process's write, or our own. */
  get generation(): number {
    return this.changes;
  }

  /** The value stored under `id`. Values are deep-frozen: they are shared, and change only via update(). */
  get<T>(id: string): T | undefined {
    return this.view.get<T>(id);
  }

  /** Records whose id starts with `prefix`, sorted by id. */
  entries<T>(prefix: string): Array<[string, T]> {
    return this.view.entries<T>(prefix);
  }
}

/** Runs tasks one after another; a task that fails does not stop the next. */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<R>(task: () => Promise<R>): Promise<R> {
    const run = this.#tail.then(task, task);
    this.#tail = run.catch(() => undefined);
    return run;
  }
}
