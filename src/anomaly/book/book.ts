import { randomUUID } from 'node:crypto';
import { windowOf } from '../core/burst.ts';
import { judge } from '../core/judge.ts';
import { type AnomalyRecord, addCounts, anomalyRecordId, emptyRecord, learn, type Seen, wouldLearn } from '../core/record.ts';
import type { AnomalySettings, Signal } from '../core/settings.ts';
import { gone, staleHistories } from './prune.ts';

// The agents' histories in the store (`anomaly:<agent>`, core/record.ts), shared by every process
// and replica on it as the quotas are: a signal is judged against the record as this process last
// read it (others' writes arrive with the store's change feed) plus the requests this process
// counted and has not yet stored. Counting costs no store write per request: the counts are added
// to the store every second (and at stop), in one update; learning writes only when the record
// changes (a new grant, host class, method or hour: rare once an agent has settled).

interface BookDraft {
  get<T>(id: string): T | undefined;
  set(id: string, value: unknown): void;
  delete(id: string): boolean;
  entries<T>(prefix: string): Array<[string, T]>;
}

interface BookStore {
  get<T>(id: string): T | undefined;
  entries<T>(prefix: string): Array<[string, T]>;
  update<R>(change: (draft: BookDraft) => R): Promise<R>;
}

interface Pending {
  agent: string;
  window: number;
  perMs: number;
  /** Counted here, not yet in a flush. */
  n: number;
  /** Taken by the flush now being written (tagged `flying`): counted until the record read shows that tag. */
  inFlight: number;
  flying: string | undefined;
}

const FLUSH_MS = 1_000;
/** How often the histories of agents gone or expired are looked for (prune.ts); and once soon after start. */
const PRUNE_MS = 10 * 60_000;
const FIRST_PRUNE_MS = 5_000;

export class AnomalyBook {
  readonly #store: BookStore;
  readonly #pending = new Map<string, Pending>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #pruner: NodeJS.Timeout | undefined;
  /** Tags this process's flushes (`flushed` on the records each writes); see #unstored. */
  readonly #bookId = randomUUID().slice(0, 8);
  #flushSeq = 0;
  readonly #configAgents: () => ReadonlySet<string>;

  /** `configAgents`: the agents of the config in force (a store agent's record is read from the store). */
  constructor(store: BookStore, configAgents: () => ReadonlySet<string>) {
    this.#store = store;
    this.#configAgents = configAgents;
  }

  record(agent: string): AnomalyRecord | undefined {
    return this.#store.get<AnomalyRecord>(anomalyRecordId(agent));
  }

  /** The signals this request raises against the agent's history. */
  judge(agent: string, seen: Seen, settings: AnomalySettings, now: Date): Signal[] {
    return judge(this.#withEarlierCounts(agent, settings, now), seen, settings, now, this.#pendingNow(agent, settings, now));
  }

  /**
   * The record with this process's counts of windows already closed and not yet stored folded in:
   * else those windows would read as idle, and the baseline as lower than it is.
   */
  #withEarlierCounts(agent: string, settings: AnomalySettings, now: Date): AnomalyRecord | undefined {
    const record = this.record(agent);
    const burst = settings.burst;
    if (burst === undefined) return record;
    const current = windowOf(now.getTime(), burst.perMs);
    const earlier = [...this.#pending.values()]
      .filter((p) => p.agent === agent && p.perMs === burst.perMs && p.window < current && this.#unstored(p, record) > 0)
      .sort((a, b) => a.window - b.window);
    return earlier.reduce((r, p) => addCounts(r, p.window, this.#unstored(p, record), p.perMs, p.window), record ?? emptyRecord());
  }

  /**
   * A window's count this process holds that the record as read does not: what no flush took yet,
   * plus what the flush being written took until the record read carries that flush's tag. The store
   * shows a write a moment before the write's promise settles; counting by the promise alone read
   * those requests twice in that moment (a burst where there was none, under load).
   */
  #unstored(p: Pending, record: AnomalyRecord | undefined): number {
    return p.n + (p.inFlight > 0 && record?.flushed !== p.flying ? p.inFlight : 0);
  }

  /** Requests of the agent's current window this process counted and has not stored. */
  #pendingNow(agent: string, settings: AnomalySettings, now: Date): number {
    const burst = settings.burst;
    if (burst === undefined) return 0;
    const p = this.#pending.get(pendingKey(agent, windowOf(now.getTime(), burst.perMs), burst.perMs));
    return p === undefined ? 0 : this.#unstored(p, this.record(agent));
  }

  /** One request admitted: counted toward the agent's window (stored within a second). */
  count(agent: string, settings: AnomalySettings, now: Date): void {
    const burst = settings.burst;
    if (burst === undefined) return;
    const window = windowOf(now.getTime(), burst.perMs);
    const key = pendingKey(agent, window, burst.perMs);
    const mine = this.#pending.get(key);
    if (mine !== undefined) mine.n++;
    // One entry per agent and window: a window's counts not yet stored stay apart from the next's.
    else this.#pending.set(key, { agent, window, perMs: burst.perMs, n: 1, inFlight: 0, flying: undefined });
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
    const pending = this.#pendingNow(agent, settings, now);
    const known = this.#configAgents();
    return this.#store.update((draft) => {
      if (gone(draft, agent, known, now.getTime())) return;
      draft.set(id, learn(draft.get<AnomalyRecord>(id) ?? emptyRecord(), seen, signals, settings, now.getTime(), pending));
    });
  }

  /** How many windows' counts this process holds (stored or not): bounded by the agents counting now. For tests. */
  get pendingWindows(): number {
    return this.#pending.size;
  }

  /** Adds the counts this process holds to the store, in one update. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing.then(() => this.flush());
    // An entry stored whole while its window was open stays (judge reads its n, 0) until the window
    // closes; no later flush would store it again, so each flush drops every such closed one here:
    // else the map grows by one entry per agent and window, and every judge scans it whole.
    const at = Date.now();
    for (const [key, p] of this.#pending) if (p.n === 0 && p.inFlight === 0 && p.window + p.perMs <= at) this.#pending.delete(key);
    const due = [...this.#pending.entries()].filter(([, p]) => p.n > 0).map(([key, p]) => ({ key, p, adding: p.n }));
    if (due.length === 0) return Promise.resolve();
    const known = this.#configAgents();
    const now = Date.now();
    // Taken now, so a request judged while the write is under way counts each of these once (#unstored).
    const tag = `${this.#bookId}:${++this.#flushSeq}`;
    for (const { p, adding } of due) {
      p.n -= adding;
      p.inFlight += adding;
      p.flying = tag;
    }
    const settle = (stored: boolean) => {
      for (const { key, p, adding } of due) {
        p.inFlight -= adding;
        if (!stored) p.n += adding; // not written: the next flush takes them again
        // Kept while its window may still count (judge reads it); a closed one stored whole goes.
        if (stored && p.n === 0 && p.inFlight === 0 && p.window + p.perMs <= Date.now()) this.#pending.delete(key);
      }
    };
    const flushing = this.#store
      .update((draft) => {
        // Oldest window first: a record is rolled forward only after the counts of the windows before.
        for (const { p, adding } of [...due].sort((a, b) => a.p.window - b.p.window)) {
          if (gone(draft, p.agent, known, now)) continue;
          const id = anomalyRecordId(p.agent);
          draft.set(id, { ...addCounts(draft.get<AnomalyRecord>(id) ?? emptyRecord(), p.window, adding, p.perMs, p.window), flushed: tag });
        }
      })
      .then(
        () => settle(true),
        (err: unknown) => {
          settle(false);
          throw err;
        },
      )
      .finally(() => {
        this.#flushing = undefined;
      });
    this.#flushing = flushing;
    return flushing;
  }

  /**
   * Removes the histories of agents that can never be served again (prune.ts): read first, so a
   * store with none to remove is not written. Returns the agents whose histories went.
   */
  async prune(now: number): Promise<string[]> {
    const known = this.#configAgents();
    if (staleHistories(this.#store, known, now).length === 0) return [];
    return this.#store.update((draft) => {
      const stale = staleHistories(draft, known, now);
      for (const agent of stale) draft.delete(anomalyRecordId(agent));
      return stale;
    });
  }

  /** Prunes soon after start, then every PRUNE_MS, against the config's agents as they stand then. */
  startPruning(onError: (err: Error) => void): void {
    const run = (after: number) => {
      this.#pruner = setTimeout(() => {
        void this.prune(Date.now())
          .catch(onError)
          .finally(() => {
            if (this.#pruner !== undefined) run(PRUNE_MS);
          });
      }, after).unref();
    };
    run(FIRST_PRUNE_MS);
  }

  /** At stop: the last counts go to the store. */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    clearTimeout(this.#pruner);
    this.#pruner = undefined;
    await this.flush();
  }
}

function pendingKey(agent: string, window: number, perMs: number): string {
  return `${agent}\0${window}\0${perMs}`;
}
