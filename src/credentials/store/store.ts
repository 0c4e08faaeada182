// The encrypted store as the rest of keyway sees it: everything decrypted in memory for cheap reads,
// and writes that go read-modify-write under an inter-process lock, so the CLI and a running proxy
// can both write without losing each other's changes.

import { mkdir, open, stat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { KeywayError } from '../../errors/index.ts';
import { removeStaleTemps, replaceFileDurably } from '../../files/atomic-write.ts';
import { currentRider } from './change-rider.ts';
import { runDraft } from './draft.ts';
import type { StoreDraft } from './draft.ts';
import { emptyStore, readStoreText, resealStore, serializeStore } from './format.ts';
import type { OpenedStore } from './format.ts';
import { withStoreLock } from './lock.ts';
import { RecordsView, SerialQueue, StoreReads } from './records-view.ts';
import type { CredentialStore } from './credential-store.ts';

/** What this process last read or wrote: the file's identity and bytes. */
interface Snapshot {
  stamp: string;
  text: string;
}

const MISSING = 'missing';

// A write holds its temporary file for milliseconds, and one slower than the lock's stale time has
// lost the lock anyway: a temporary file a minute old was left by a writer that died (kill -9, power).
const STALE_TEMP_MS = 60_000;

// ino changes on every write (each is a rename of a new file); size and mtime catch anything else.
function stampOf(st: BigIntStats): string {
  return `${st.ino}:${st.size}:${st.mtimeNs}`;
}

function isEnoent(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** Reads bytes and stat through one handle, so the stamp belongs to exactly the bytes read. */
async function readSnapshot(path: string): Promise<Snapshot> {
  const handle = await open(path, 'r');
  try {
    const st = await handle.stat({ bigint: true });
    return { stamp: stampOf(st), text: await handle.readFile('utf8') };
  } finally {
    await handle.close();
  }
}

async function statStamp(path: string): Promise<string> {
  try {
    return stampOf(await stat(path, { bigint: true }));
  } catch (err) {
    if (isEnoent(err)) return MISSING;
    throw err;
  }
}

function missing(path: string): KeywayError {
  return new KeywayError('store_corrupt', `the store ${path} has disappeared since it was opened; restore it from a backup`);
}

export interface OpenStoreOptions {
  /**
   * Leave a missing store missing until the first update(): commands that only read (`grants list`)
   * must not make a store nobody asked for. Until then the store reads as empty. `settleKey`, if
   * given, is called once before that first write for the real key (it may generate data/master.key),
   * the `key` given to open() having been a stand-in.
   */
  createOnFirstWrite?: { settleKey?: () => Promise<Buffer> };
  /**
   * The key as it is now kept (keyway key rotate may have changed it): asked when the file no longer
   * opens with the key in memory, so a running proxy follows a rotation made by another process.
   */
  reloadKey?: () => Promise<Buffer | undefined>;
}

/**
 * Makes an empty store under the lock and only if still absent, so two first starts cannot both make
 * one (each with its own check record) and a store made meanwhile is never replaced by an empty one.
 * `keyOf` runs under the lock, only when the store is still missing: it may check the home (a first
 * start must not make a store over history) and make the master key, so that the key and the store
 * appear together to anyone who looks under the same lock. True when this call made the store.
 */
export async function createStoreIfMissing(path: string, keyOf: () => Promise<Buffer>): Promise<boolean> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  return withStoreLock(path, async (lock) => {
    if ((await statStamp(path)) !== MISSING) return false;
    const text = serializeStore(emptyStore(await keyOf()));
    lock.assertHeld();
    await replaceFileDurably(path, text, 0o600);
    return true;
  });
}

export class Store extends StoreReads implements CredentialStore {
  readonly path: string;
  #key: Buffer;
  #deferred: OpenStoreOptions['createOnFirstWrite'];
  #text: string;
  #stamp: string;
  // Serialises this instance's updates and reloads: proper-lockfile would make a second in-process
  // update spin on retries, and a reload racing an update could put older state back in memory.
  #queue = new SerialQueue();
  #timer: NodeJS.Timeout | undefined;
  #polling = false;
  #onChange: (() => void) | undefined;
  #onError: ((err: Error) => void) | undefined;
  #reloadKey: OpenStoreOptions['reloadKey'];

  private constructor(path: string, key: Buffer, state: OpenedStore, snap: Snapshot) {
    super(state);
    this.path = path;
    this.#key = key;
    this.#text = snap.text;
    this.#stamp = snap.stamp;
  }

  /**
   * Opens and decrypts the store, creating it if missing (or, with createOnFirstWrite, at the first
   * update). Throws store_wrong_key or store_corrupt.
   */
  static async open(path: string, key: Buffer, options: OpenStoreOptions = {}): Promise<Store> {
    const abs = resolve(path);
    let snap = await readSnapshot(abs).catch((err: unknown) => {
      if (isEnoent(err)) return undefined;
      // A folder (or anything else that is not a file) where the store should be: damage, said as such.
      if ((err as NodeJS.ErrnoException | undefined)?.code === 'EISDIR') {
        throw new KeywayError('store_corrupt', `the store ${abs} is a folder, not a file; restore it from a backup`);
      }
      throw err;
    });
    if (snap === undefined && options.createOnFirstWrite) {
      const store = new Store(abs, key, emptyStore(key), { stamp: MISSING, text: '' });
      store.#deferred = options.createOnFirstWrite;
      return store;
    }
    if (snap === undefined) {
      await createStoreIfMissing(abs, async () => key);
      snap = await readSnapshot(abs);
    }
    const state = readStoreText(abs, key, snap.text);
    await removeStaleTemps(abs, STALE_TEMP_MS);
    const store = new Store(abs, key, state, snap);
    store.#reloadKey = options.reloadKey;
    return store;
  }

  /**
   * Read-modify-write under the inter-process lock. The file is re-read first so a change another
   * process made since we last looked is kept; if it cannot be read (wrong key, damage), this throws
   * and writes nothing. `fn` must not call update() on this store (it would wait for itself).
   */
  update<R>(fn: (draft: StoreDraft) => R | Promise<R>): Promise<R> {
    // Read here, in the caller's context: the change (if any) this write belongs to.
    const rider = currentRider(this);
    return this.#queue.run(async () => {
      if (this.#deferred) await this.#createDeferred(this.#deferred);
      return withStoreLock(this.path, async (lock) => {
        const snap = await readSnapshot(this.path).catch((err: unknown) => {
          throw isEnoent(err) ? missing(this.path) : err;
        });
        const base = await this.#decodeFollowingKey(snap);
        this.#adopt(snap, base);

        const { result, changed } = await runDraft(base, fn, rider);
        if (!changed) return result;
        const next = changed.commit(this.#key);
        const text = serializeStore(next);
        lock.assertHeld();
        await replaceFileDurably(this.path, text, 0o600);
        // We still hold the lock, so this stat is of the file we just wrote.
        this.#adopt({ text, stamp: await statStamp(this.path) }, next);
        return result;
      });
    });
  }

  /** The first write to a store opened with createOnFirstWrite: settle the key, then make the file. */
  async #createDeferred(deferred: NonNullable<OpenStoreOptions['createOnFirstWrite']>): Promise<void> {
    const settle = async () => (deferred.settleKey ? await deferred.settleKey() : this.#key);
    // The key is settled under the store's lock when this makes the store (key and store appear
    // together); a store another process made meanwhile has its key already.
    const settled: { key?: Buffer } = {};
    const made = await createStoreIfMissing(this.path, async () => (settled.key = await settle()));
    const key = made && settled.key !== undefined ? settled.key : await settle();
    if (!key.equals(this.#key)) {
      // Still empty (nothing was ever written): the same empty store, sealed with the real key.
      this.#key = key;
      this.view = new RecordsView(emptyStore(key));
    }
    this.#deferred = undefined;
  }

  /**
   * Polls the file (one stat per interval) and reloads when it changes, so a running proxy sees CLI
   * writes within a second. `onChange` runs after every change to memory, ours included. A reload that
   * fails keeps the previous contents and goes to `onError`, once per distinct bad file. One watcher per
   * store; calling again replaces it. The timer does not keep the process alive.
   */
  watch(onChange: () => void, intervalMs = 250, onError?: (err: Error) => void): void {
    this.close();
    this.#onChange = onChange;
    this.#onError = onError;
    this.#timer = setInterval(() => void this.#poll(), intervalMs);
    this.#timer.unref();
  }

  /** Stops watching. The store stays usable for get() and update(). */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#onChange = undefined;
    this.#onError = undefined;
  }

  /** One stat; the file re-read only when it is not the one in memory. A file that cannot be read throws (the watch only reports). */
  async catchUp(): Promise<void> {
    if (this.#deferred) return; // never written: nothing to catch up with
    if (this.lastReadError === undefined && (await statStamp(this.path)) === this.#stamp) return;
    await this.#queue.run(async () => {
      const snap = await readSnapshot(this.path).catch((err: unknown) => {
        throw isEnoent(err) ? missing(this.path) : err;
      });
      if (snap.stamp !== this.#stamp || this.lastReadError !== undefined) this.#adopt(snap, await this.#decodeFollowingKey(snap));
    });
  }

  async #poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      if ((await statStamp(this.path)) === this.#stamp) return;
      await this.#queue.run(async () => {
        const snap = await readSnapshot(this.path).catch((err: unknown) => {
          if (isEnoent(err)) return undefined;
          throw err;
        });
        if (snap === undefined) {
          if (this.#stamp !== MISSING) {
            this.#stamp = MISSING;
            this.#report(missing(this.path));
          }
          return;
        }
        if (snap.stamp === this.#stamp) return;
        try {
          this.#adopt(snap, await this.#decodeFollowingKey(snap));
        } catch (err) {
          // Remember the bad file so it is reported once, not on every tick; memory keeps the last good state.
          this.#stamp = snap.stamp;
          this.#report(err);
        }
      });
    } catch (err) {
      this.#report(err);
    } finally {
      this.#polling = false;
    }
  }

  /**
   * Every record sealed again under `key`, under the lock, in one write: the file opens with the new
   * key only. The caller keeps the new key where reloadKey finds it before this (a pending key file),
   * so a process that reads the file meanwhile can follow.
   */
  rekey(key: Buffer): Promise<number> {
    return this.#queue.run(() =>
      withStoreLock(this.path, async (lock) => {
        const snap = await readSnapshot(this.path).catch((err: unknown) => {
          throw isEnoent(err) ? missing(this.path) : err;
        });
        const next = resealStore(await this.#decodeFollowingKey(snap), key);
        const text = serializeStore(next);
        lock.assertHeld();
        await replaceFileDurably(this.path, text, 0o600);
        this.#key = key;
        this.#adopt({ text, stamp: await statStamp(this.path) }, next);
        return next.records.size;
      }),
    );
  }

  /** The file decoded; when it no longer opens with the key in memory, once more with the key as now kept. */
  async #decodeFollowingKey(snap: Snapshot): Promise<OpenedStore> {
    try {
      return this.#decode(snap);
    } catch (err) {
      if (!(err instanceof KeywayError) || err.code !== 'store_wrong_key' || this.#reloadKey === undefined) throw err;
      const key = await this.#reloadKey();
      if (key === undefined || key.equals(this.#key)) throw err;
      const state = readStoreText(this.path, key, snap.text);
      this.#key = key;
      return state;
    }
  }

  #decode(snap: Snapshot): OpenedStore {
    if (snap.text === this.#text) return this.view.state;
    return readStoreText(this.path, this.#key, snap.text, this.view.state);
  }

  #adopt(snap: Snapshot, state: OpenedStore): void {
    this.#stamp = snap.stamp;
    this.lastReadError = undefined;
    if (snap.text === this.#text) return;
    this.#text = snap.text;
    this.view = new RecordsView(state);
    this.changes++;
    if (this.#onChange === undefined) return;
    try {
      this.#onChange();
    } catch (err) {
      this.#report(err);
    }
  }

  #report(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.lastReadError = error;
    this.#onError?.(error);
  }
}
