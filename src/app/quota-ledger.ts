import type { LimitScope } from '../policy/rate-limits.ts';
import { type QuotaRecord, quotaRecordId } from '../credentials/quota-record.ts';

// Request quotas per UTC day, shared by every process on the store (and by replicas on
// PostgreSQL), kept without a store write per request: a process reserves a block of requests in
// one store update (under the store's lock, so the blocks never add up past the quota), then
// counts them down in memory. Blocks are an eighth of what is left (at most 64), so as the day's
// quota runs out they shrink to one request, and a replica holds back little that another could use.
// A block unused when the process stops is spent (a restart never gives a day's count back).

interface LedgerStore {
  update<T>(change: (draft: { get<R>(id: string): R | undefined; set(id: string, value: unknown): void }) => T): Promise<T>;
}

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

  constructor(store: LedgerStore) {
    this.#store = store;
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
        draft.set(id, { day, reserved: reserved + size } satisfies QuotaRecord);
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
