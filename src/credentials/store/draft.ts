// The mutable view an update() callback works on. It records which ids changed so that only those are
// re-sealed; every other record goes back to disk with its ciphertext untouched.

import { deepFreeze } from '../../deep-freeze.ts';
import { addRider, type ChangeRider } from './change-rider.ts';
import { CHECK_ID, seal } from './format.ts';
import type { OpenedRecord, OpenedStore } from './format.ts';

export interface StoreDraft {
  get<T>(id: string): T | undefined;
  /** `value` must be JSON-compatible; it is copied, so later changes to the caller's object are not seen. */
  set(id: string, value: unknown): void;
  /** Returns whether a record was there to delete. */
  delete(id: string): boolean;
  /** Records whose id starts with `prefix`, sorted by id. */
  entries<T>(prefix: string): Array<[string, T]>;
}

type Change = { value: unknown } | { deleted: true };

export class Draft implements StoreDraft {
  readonly #base: OpenedStore;
  readonly #changes = new Map<string, Change>();
  #closed = false;

  constructor(base: OpenedStore) {
    this.#base = base;
  }

  get<T>(id: string): T | undefined {
    this.#assertOpen();
    const change = this.#changes.get(id);
    if (change !== undefined) return 'deleted' in change ? undefined : (change.value as T);
    return this.#base.records.get(id)?.value as T | undefined;
  }

  set(id: string, value: unknown): void {
    this.#assertOpen();
    if (id === CHECK_ID) throw new RangeError(`store record id ${CHECK_ID} is reserved`);
    const json = JSON.stringify(value);
    if (json === undefined) throw new TypeError(`store record ${id}: value is not JSON-serialisable`);
    const base = this.#base.records.get(id);
    // Setting a record to what it already holds is not a change: no re-seal, and no write if nothing else changed.
    if (base !== undefined && JSON.stringify(base.value) === json) {
      this.#changes.delete(id);
      return;
    }
    // Parsing our own JSON both copies the value and makes it exactly what a reader of the file will get.
    this.#changes.set(id, { value: deepFreeze(JSON.parse(json) as unknown) });
  }

  delete(id: string): boolean {
    this.#assertOpen();
    const existed = this.get(id) !== undefined;
    if (this.#base.records.has(id)) this.#changes.set(id, { deleted: true });
    else this.#changes.delete(id);
    return existed;
  }

  entries<T>(prefix: string): Array<[string, T]> {
    this.#assertOpen();
    const ids = new Set<string>();
    for (const id of this.#base.records.keys()) if (id.startsWith(prefix)) ids.add(id);
    for (const id of this.#changes.keys()) if (id.startsWith(prefix)) ids.add(id);
    const out: Array<[string, T]> = [];
    for (const id of [...ids].sort()) {
      const value = this.get<T>(id);
      if (value !== undefined) out.push([id, value]);
    }
    return out;
  }

  get changed(): boolean {
    return this.#changes.size > 0;
  }

  /** Ends the draft (later calls throw, catching callbacks that keep it past update()) and builds the result. */
  commit(key: Buffer): OpenedStore {
    this.#closed = true;
    const records = new Map<string, OpenedRecord>(this.#base.records);
    for (const [id, change] of this.#changes) {
      if ('deleted' in change) records.delete(id);
      else records.set(id, { value: change.value, sealed: seal(key, id, change.value) });
    }
    return { check: this.#base.check, records };
  }

  close(): void {
    this.#closed = true;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('store draft used after its update() finished');
  }
}

/**
 * Runs an update's `fn` on a draft of `base`. A draft that `fn` threw from, or left unchanged, is
 * closed: `changed` is undefined then, and nothing is to be written. A draft that changed carries
 * `rider`'s owed audit line (change-rider.ts), written in the same write as the change.
 */
export async function runDraft<R>(
  base: OpenedStore,
  fn: (draft: StoreDraft) => R | Promise<R>,
  rider?: ChangeRider,
): Promise<{ result: R; changed: Draft | undefined }> {
  const draft = new Draft(base);
  let result: R;
  try {
    result = await fn(draft);
  } catch (err) {
    draft.close();
    throw err;
  }
  if (draft.changed) {
    addRider(draft, rider);
    return { result, changed: draft };
  }
  draft.close();
  return { result, changed: undefined };
}
