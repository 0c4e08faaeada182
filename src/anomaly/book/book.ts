import { windowOf } from '../core/burst.ts';
import { judge } from '../core/judge.ts';
import { type AnomalyRecord, addCounts, anomalyRecordId, emptyRecord, learn, type Seen, wouldLearn } from '../core/record.ts';
import type { AnomalySettings, Signal } from '../core/settings.ts';

// The agents' histories in the store (`anomaly:<agent>`, core/record.ts), shared by every process
// and replica on it as the quotas are: a signal is judged against the record as this process last
// read it (others' writes arrive with the store's change feed) plus the requests this process
// counted and has not yet stored. Counting costs no store write per request: the counts are added
// to the store every second (and at stop), in one update; learning writes only when the record
// changes (a new grant, host class, method or hour: rare once an agent has settled).

interface BookStore {
  get<T>(id: string): T | undefined;
  update<R>(change: (draft: { get<T>(id: string): T | undefined; set(id: string, value: unknown): void }) => R): Promise<R>;
}

interface Pending {
  window: number;
  perMs: number;
  n: number;
}

const FLUSH_MS = 1_000;

export class AnomalyBook {
  readonly #store: BookStore;
  readonly #pending = new Map<string, Pending>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;

  constructor(store: BookStore) {
    this.#store = store;
  }

  record(agent: string): AnomalyRecord | undefined {
    return this.#store.get<AnomalyRecord>(anomalyRecordId(agent));
  }

  /** The signals this request raises against the agent's history. */
  judge(agent: string, seen: Seen, settings: AnomalySettings, now: Date): Signal[] {
    const burst = settings.burst;
    const mine = this.#pending.get(agent);
    const pending = burst !== undefined && mine !== undefined && mine.window === windowOf(now.getTime(), burst.perMs) ? mine.n : 0;
    return judge(this.record(agent), seen, settings, now, pending);
  }

  /** One request admitted: counted toward the agent's window (stored within a second). */
  count(agent: string, settings: AnomalySettings, now: Date): void {
    const burst = settings.burst;
    if (burst === undefined) return;
    const window = windowOf(now.getTime(), burst.perMs);
    const mine = this.#pending.get(agent);
    if (mine !== undefined && mine.window === window && mine.perMs === burst.perMs) mine.n++;
    else {
      // A new window with counts of the last not yet stored: those go first, then this one starts.
      if (mine !== undefined && mine.n > 0) void this.flush().catch(() => undefined);
      this.#pending.set(agent, { window, perMs: burst.perMs, n: 1 });
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      void this.flush().catch(() => undefined);
    }, FLUSH_MS).unref();
  }

  /** Whether the request shows the agent something it has not recorded (most: no, and nothing is written). */
  wouldLearn(agent: string, seen: Seen): boolean {
    return wouldLearn(this.record(agent), seen);
  }

  /** The request (and the signals it raised: an alert, or a person's yes) learned into the agent's history. */
  learn(agent: string, seen: Seen, signals: readonly Signal[], settings: AnomalySettings, now: Date): Promise<void> {
    const id = anomalyRecordId(agent);
    return this.#store.update((draft) => {
      draft.set(id, learn(draft.get<AnomalyRecord>(id) ?? emptyRecord(), seen, signals, settings, now.getTime()));
    });
  }

  /** Adds the counts this process holds to the store, in one update. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing.then(() => this.flush());
    const due = [...this.#pending.entries()].filter(([, p]) => p.n > 0).map(([agent, p]) => ({ agent, p, adding: p.n }));
    if (due.length === 0) return Promise.resolve();
    const flushing = this.#store
      .update((draft) => {
        for (const { agent, p, adding } of due) {
          const id = anomalyRecordId(agent);
          draft.set(id, addCounts(draft.get<AnomalyRecord>(id) ?? emptyRecord(), p.window, adding, p.perMs, p.window));
        }
      })
      .then(() => {
        for (const { agent, p, adding } of due) {
          p.n -= adding;
          if (p.n === 0 && this.#pending.get(agent) === p && p.window + p.perMs <= Date.now()) this.#pending.delete(agent);
        }
      })
      .finally(() => {
        this.#flushing = undefined;
      });
    this.#flushing = flushing;
    return flushing;
  }

  /** At stop: the last counts go to the store. */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }
}
