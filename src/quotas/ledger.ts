import type { LimitScope } from '../policy/rate-limits.ts';
import { type QuotaRecord, quotaRecordId } from './record.ts';

// Request quotas per UTC day, shared by every process on the store (and by replicas on
// PostgreSQL), kept without a store write per request: a process reserves a block of requests in
// one store update (under the store's lock, so the blocks never add up past the quota), then
// counts them down in memory. Blocks are an eighth of what is left (at most 64), so as the day's
// quota runs out they shrink to one request, and a replica holds back little that another could use.
// A block unused when the process stops is spent (a restart never gives a day's count back).
// Body bytes (a bytes quota) are known only once a request is done: counted in memory and added to
// the store's count every second and at stop; checked before each request against what is known.

interface LedgerStore {
  update<T>(change: (draft: { get<R>(id: string): R | undefined; set(id: string, value: unknown): void }) => T): Promise<T>;
  /** The store as this process last read it (other processes' counts arrive with the store's change feed). */
  get<R>(id: string): R | undefined;
}

/** One scope's body bytes today: what this process has counted and not yet added to the store. */
interface ByteCount {
  day: string;
  id: string;
  pending: number;
  /** The store's count after this process's last addition. */
  known: number;
}

/** How often counted bytes are added to the store (and at stop). */
const BYTES_FLUSH_MS = 1_000;

interface Block {
  day: string;
  left: number;
  /** The store said the day's quota is all taken: refuse without asking again until the day changes. */
  spent: boolean;
}

const MAX_BLOCK = 64;

export class QuotaLedger {
  readonly #store: LedgerStore;
  readonly #blocks = new Map<string, Block>();
  readonly #refills = new Map<string, Promise<void>>();
  readonly #bytes = new Map<string, ByteCount>();
  #flushTimer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;

  constructor(store: LedgerStore) {
    this.#store = store;
  }

  /**
   * Body bytes of `scope` counted today, by every process as far as this one knows: the store's
   * count (read at this process's last addition, or newer through the change feed) plus what it
   * has counted since. A bytes quota is checked against it before each request; a request in
   * flight when the quota is reached finishes, and its bytes count.
   */
  bytesUsed(scope: LimitScope, now: Date): number {
    const day = now.toISOString().slice(0, 10);
    const id = quotaRecordId(scope.kind, scope.agent, scope.grant);
    const stored = this.#store.get<QuotaRecord>(id);
    const storedBytes = stored?.day === day ? (stored.bytes ?? 0) : 0;
    const count = this.#bytes.get(id);
    const mine = count?.day === day ? count : undefined;
    return Math.max(storedBytes, mine?.known ?? 0) + (mine?.pending ?? 0);
  }

  /** Adds a finished request's body bytes to each scope's count; the store hears of them within a second. */
  addBytes(scopes: readonly LimitScope[], bytes: number, now: Date): void {
    if (bytes <= 0) return;
    const day = now.toISOString().slice(0, 10);
    for (const scope of scopes) {
      const id = quotaRecordId(scope.kind, scope.agent, scope.grant);
      let count = this.#bytes.get(id);
      if (count === undefined || count.day !== day) {
        count = { day, id, pending: 0, known: 0 };
        this.#bytes.set(id, count);
      }
      count.pending += bytes;
    }
    // One count per scope (a new day replaces the last): the map stays as small as the config.
    this.#flushTimer ??= setTimeout(() => {
      this.#flushTimer = undefined;
      void this.flush().catch(() => undefined); // kept pending: the next flush tries again
    }, BYTES_FLUSH_MS).unref();
  }

  /** Adds every pending count to the store, in one update. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing.then(() => this.flush());
    const due = [...this.#bytes.values()].filter((c) => c.pending > 0).map((c) => ({ count: c, adding: c.pending }));
    if (due.length === 0) return Promise.resolve();
    const flushing = this.#store
      .update((draft) =>
        due.map(({ count, adding }) => {
          const held = draft.get<QuotaRecord>(count.id);
          const base: QuotaRecord = held?.day === count.day ? held : { day: count.day, reserved: 0 };
          const bytes = (base.bytes ?? 0) + adding;
          draft.set(count.id, { ...base, bytes } satisfies QuotaRecord);
          return bytes;
        }),
      )
      .then((totals) => {
        due.forEach(({ count, adding }, i) => {
          count.pending -= adding;
          count.known = totals[i]!;
        });
      })
      .finally(() => {
        this.#flushing = undefined;
      });
    this.#flushing = flushing;
    return flushing;
  }

  /** At stop: the last counted bytes go to the store. */
  async close(): Promise<void> {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    await this.flush();
  }

  /** One request of `scope`'s quota today: true at once from the block held, else after reserving one. */
  take(scope: LimitScope, perDay: number, now: Date): boolean | Promise<boolean> {
    const day = now.toISOString().slice(0, 10);
    // The quota is part of the key: a reload that raises it asks the store again at once.
    const key = `${scope.key}\0${perDay}`;
    if (this.#takeLocal(key, day)) return true;
    const block = this.#blocks.get(key);
    if (block?.day === day && block.spent) return false;
    return this.#takeAfterRefill(key, scope, perDay, day);
  }

  async #takeAfterRefill(key: string, scope: LimitScope, perDay: number, day: string): Promise<boolean> {
    // Each pass either takes from a block, finds the day spent, or reserves a block: bounded by how
    // many blocks the quota holds, and each waiter usually takes from the first block reserved.
    for (let pass = 0; pass < 1_000; pass++) {
      if (this.#takeLocal(key, day)) return true;
      const block = this.#blocks.get(key);
      if (block?.day === day && block.spent) return false;
      await this.#refill(key, scope, perDay, day);
    }
    return false;
  }

  #takeLocal(key: string, day: string): boolean {
    const block = this.#blocks.get(key);
    if (block === undefined || block.day !== day || block.left <= 0) return false;
    block.left--;
    return true;
  }

  /** One store update per scope at a time: waiters share it. */
  #refill(key: string, scope: LimitScope, perDay: number, day: string): Promise<void> {
    const running = this.#refills.get(key);
    if (running) return running;
    const id = quotaRecordId(scope.kind, scope.agent, scope.grant);
    const refill = this.#store
      .update((draft) => {
        const held = draft.get<QuotaRecord>(id);
        const reserved = held?.day === day ? held.reserved : 0;
        const left = perDay - reserved;
        if (left <= 0) return 0;
        const size = Math.min(MAX_BLOCK, Math.max(1, Math.ceil(left / 8)));
        draft.set(id, { ...(held?.day === day ? held : {}), day, reserved: reserved + size } satisfies QuotaRecord);
        return size;
      })
      .then((size) => {
        const block = this.#blocks.get(key);
        const kept = block?.day === day ? block.left : 0;
        this.#blocks.set(key, { day, left: kept + size, spent: size === 0 && kept === 0 });
      })
      .finally(() => this.#refills.delete(key));
    this.#refills.set(key, refill);
    return refill;
  }
}
