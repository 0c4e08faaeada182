// What makes a secret source's item fetched once per ttl across every process on the store (workers,
// the command line, replicas on PostgreSQL), as token refreshes are: the value is kept sealed in the
// store (a record per item, like an OAuth grant's tokens) with when it was fetched, and the fetch is
// made under the store's refresh lock (PostgreSQL: an advisory lock across machines; a file: a lock
// file per item). A process that finds a fresh value there uses it without asking the source.
//
// The record is also what makes a refused value refused everywhere: a process that got an
// upstream's 401 for it drops the record (awaited, before the 401 is answered), and every process
// sends a value only while the record holds it, as of a look at the store begun after the request
// came (current(): a stat of the file, or one query of the database's generation, shared by a burst).
import { createHash } from 'node:crypto';
import type { CredentialStore } from '../store/credential-store.ts';
import { acquireRefreshLock } from '../issuing/refresh-lock.ts';
import { lookSinceAsked } from '../store/since-asked.ts';

export type SharedStore = Pick<CredentialStore, 'get' | 'update' | 'acquireRefreshLock' | 'catchUp'>;

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
  readonly #catchUp: () => Promise<void>;

  constructor(store: SharedStore, lockDir: string) {
    this.#store = store;
    this.#lockDir = lockDir;
    this.#catchUp = lookSinceAsked(() => store.catchUp());
  }

  /** The record's id for an item (a hash: an item's name may hold any character). */
  static idOf(itemKey: string): string {
    return SOURCE_VALUE_PREFIX + createHash('sha256').update(itemKey).digest('hex').slice(0, 32);
  }

  /** What this process has read of the store (no I/O). */
  peek(id: string): SharedValue | undefined {
    return this.#store.get<SharedValue>(id);
  }

  /**
   * The record as the store holds it now, without its write lock: every write made before this was
   * asked is seen (a drop above all). Throws when the store cannot be read.
   */
  async current(id: string): Promise<SharedValue | undefined> {
    await this.#catchUp();
    return this.peek(id);
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

  /**
   * Drops the saved value if it is one the upstream refused (`isRejected`): no process sends it after
   * this resolves. A value another process fetched since (not refused) stays.
   */
  forget(id: string, isRejected: (value: string) => boolean): Promise<void> {
    return this.#store.update((draft) => {
      const saved = draft.get(id) as SharedValue | undefined;
      if (saved !== undefined && isRejected(saved.value)) draft.delete(id);
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
