// What keyway needs of a store, whichever backend holds it: the file (store.ts, the default) or
// PostgreSQL (postgres-store.ts, for replicas). Reads come from memory; update() is
// read-modify-write under the backend's lock; watch() brings in other processes' writes.

import type { StoreDraft } from './draft.ts';

/** The part of a store the tables are built from (grants, agents, listings): its reads. */
export type RecordSource = Pick<CredentialStore, 'get' | 'entries'>;

export interface CredentialStore {
  /** Where the store lives, as messages name it (a file path, or the database without its password). */
  readonly path: string;
  /** Why the last re-read failed, while it does; memory keeps the last good contents. */
  readonly readError: Error | undefined;
  /** Increments whenever the in-memory contents change. */
  readonly generation: number;
  get<T>(id: string): T | undefined;
  entries<T>(prefix: string): Array<[string, T]>;
  update<R>(fn: (draft: StoreDraft) => R | Promise<R>): Promise<R>;
  watch(onChange: () => void, intervalMs?: number, onError?: (err: Error) => void): void;
  /**
   * Memory brought up to the store as it is now, without its write lock: one cheap look (the file's
   * stamp, the database's generation) and a re-read only when another process wrote since. For a
   * check that must see every write made before it was asked (a value an upstream refused: see
   * sources/shared-values.ts). Throws when the store cannot be read; memory keeps what it had.
   */
  catchUp(): Promise<void>;
  /** Stops watching; reads and writes still work. */
  close(): void;
  /** Releases what the store holds open (database connections); the file store holds nothing. */
  end?(): Promise<void>;
  /**
   * One token refresh per grant across every process on this store, where the store itself can
   * lock across machines (PostgreSQL: an advisory lock held by a session, released if the holder
   * dies). Without it, the refresh lock is a file under data/locks (one host only).
   */
  acquireRefreshLock?(grantId: string, waitMs: number): Promise<() => Promise<void>>;
}
