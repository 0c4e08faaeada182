// What makes a secret source's item fetched once per ttl across every process on the store (workers,
// the command line, replicas on PostgreSQL), as token refreshes are: the value is kept sealed in the
// store (a record per item, like an OAuth grant's tokens) with when it was fetched, and the fetch is
// made under the store's refresh lock (PostgreSQL: an advisory lock across machines; a file: a lock
// file per item). A process that finds a fresh value there uses it without asking the source.
import { createHash } from 'node:crypto';
import type { CredentialStore } from '../store/credential-store.ts';
import { acquireRefreshLock } from '../providers/refresh-lock.ts';

export type SharedStore = Pick<CredentialStore, 'get' | 'update' | 'acquireRefreshLock'>;

export interface SharedValue {
  /** The entry's key (item and source settings): a value saved under other settings is not used. */
  key: string;
  value: string;
  fetched_at: number;
}

export const SOURCE_VALUE_PREFIX = 'source-value:';

export class SharedValues {
  readonly #store: SharedStore;
  readonly #lockDir: string;

  constructor(store: SharedStore, lockDir: string) {
    this.#store = store;
    this.#lockDir = lockDir;
  }

  /** The record's id for an item (a hash: an item's name may hold any character). */
  static idOf(itemKey: string): string {
    return SOURCE_VALUE_PREFIX + createHash('sha256').update(itemKey).digest('hex').slice(0, 32);
  }

  /** What this process has read of the store (no I/O). */
  peek(id: string): SharedValue | undefined {
    return this.#store.get<SharedValue>(id);
  }

  /** The record as the store holds it now (read under the store's write lock: a value another process just saved is seen). */
  read(id: string): Promise<SharedValue | undefined> {
    return this.#store.update((draft) => draft.get(id) as SharedValue | undefined);
  }

  write(id: string, value: SharedValue): Promise<void> {
    return this.#store.update((draft) => {
      draft.set(id, value);
    });
  }

  /** Drops a saved value (the upstream refused it): no process takes it from the store again. */
  forget(id: string): Promise<void> {
    return this.#store.update((draft) => {
      if (draft.get(id) !== undefined) draft.delete(id);
    });
  }

  /** `fn` under the item's lock, across processes. */
  async locked<T>(id: string, waitMs: number, fn: () => Promise<T>): Promise<T> {
    const name = `source-${id.slice(SOURCE_VALUE_PREFIX.length, SOURCE_VALUE_PREFIX.length + 16)}`;
    const release = this.#store.acquireRefreshLock ? await this.#store.acquireRefreshLock(name, waitMs) : await acquireRefreshLock(this.#lockDir, name, waitMs);
    try {
      return await fn();
    } finally {
      await release();
    }
  }
}
