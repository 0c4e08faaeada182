import { usageRecordId, type GrantUsage } from '../credentials/grant-record.ts';
import type { CredentialStore } from '../credentials/store/index.ts';

/**
 * Last use per grant, and whether the upstream refused its credential (401) the last time it
 * answered, kept in memory on the request path and written to the store every few seconds at most:
 * the request path does no disk I/O for it.
 */
export class UsageRecorder {
  readonly #store: CredentialStore;
  // Epoch ms, formatted only when flushed: the request path does a Map set and nothing more.
  readonly #pending = new Map<string, number>();
  /** Per grant, the upstream's last verdict on its credential since the last flush: refused at (epoch ms), or accepted (null). */
  readonly #verdicts = new Map<string, number | null>();
  readonly #timer: NodeJS.Timeout;

  constructor(store: CredentialStore) {
    this.#store = store;
    this.#timer = setInterval(() => void this.flush().catch(() => undefined), 10_000);
    this.#timer.unref();
  }

  touch(grantId: string): void {
    this.#pending.set(grantId, Date.now());
  }

  /** The upstream answered a request that carried the grant's credential: 401 marks it refused, an answer under 400 clears that. */
  answered(grantId: string, status: number): void {
    if (status === 401) this.#verdicts.set(grantId, Date.now());
    else if (status < 400) this.#verdicts.set(grantId, null);
  }

  async flush(): Promise<void> {
    if (this.#pending.size === 0 && this.#verdicts.size === 0) return;
    const used = [...this.#pending];
    const verdicts = [...this.#verdicts];
    this.#pending.clear();
    this.#verdicts.clear();
    await this.#store.update((draft) => {
      const next = new Map<string, GrantUsage>();
      const record = (id: string): GrantUsage => {
        let usage = next.get(id);
        if (usage === undefined) {
          const stored = draft.get<GrantUsage>(usageRecordId(id));
          usage = { last_used_at: stored?.last_used_at ?? new Date(0).toISOString(), ...(stored?.refused_at ? { refused_at: stored.refused_at } : {}) };
          next.set(id, usage);
        }
        return usage;
      };
      for (const [id, at] of used) record(id).last_used_at = new Date(at).toISOString();
      for (const [id, at] of verdicts) {
        const usage = record(id);
        if (at === null) delete usage.refused_at;
        else usage.refused_at = new Date(at).toISOString();
      }
      for (const [id, usage] of next) draft.set(usageRecordId(id), usage);
    });
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
