import { usageRecordId, type GrantUsage } from '../credentials/grant-record.ts';
import type { CredentialStore } from '../credentials/store/index.ts';

/**
 * Last use per grant, kept in memory on the request path and written to the store every few
 * seconds at most: the request path does no disk I/O for it.
 */
export class UsageRecorder {
  readonly #store: CredentialStore;
  // Epoch ms, formatted only when flushed: the request path does a Map set and nothing more.
  readonly #pending = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;

  constructor(store: CredentialStore) {
    this.#store = store;
    this.#timer = setInterval(() => void this.flush().catch(() => undefined), 10_000);
    this.#timer.unref();
  }

  touch(grantId: string): void {
    this.#pending.set(grantId, Date.now());
  }

  async flush(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending];
    this.#pending.clear();
    await this.#store.update((draft) => {
      for (const [id, at] of batch) draft.set(usageRecordId(id), { last_used_at: new Date(at).toISOString() } satisfies GrantUsage);
    });
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
