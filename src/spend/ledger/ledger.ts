// Model spend counted against budgets (issue 63), shared by every process on the store and by
// replicas on PostgreSQL, without a store write per request. An answer's usage is counted in memory
// at once and added to the store's records in one update shortly after: the records are additive
// (each process adds what it counted, nothing is overwritten with a total), so two processes or
// replicas never undo each other's counts. A check reads the store as this process last saw it
// (other processes' counts arrive through the change feed) plus what it has counted since.
//
// Under proxy.workers the primary owns the one ledger and the workers ask it (workers/shared-spend.ts):
// its memory is exact for the whole keyway. Across replicas a check is as fresh as the last flush
// and change feed: FLUSH_MS plus the feed's delay (file: its 250 ms poll; PostgreSQL: a NOTIFY, at
// worst its 1 s poll).
//
// A crash loses nothing a client received (issue 85): given a journal (journal.ts), each add
// is appended to it before it counts, and each flush records in the same store update the journal
// line up to which its counts go; recover() at start counts again the lines of killed processes'
// journals past their marks, and flushes them with their marks before their folders go.
import type { BudgetConfig } from '../../config/spend.ts';
import type { CredentialStore } from '../../credentials/store/index.ts';
import { limitOf, periodEnd, scopeValuesOf, unitOf } from '../core/budgets.ts';
import type { BudgetStanding, BudgetVerdict, SpendEntry, SpendLedgerApi, SpendScope } from '../core/ledger.ts';
import { ModelNames } from '../core/model-name.ts';
import type { SpendRecord } from '../core/records.ts';
import {
  addEntryTo,
  addSpend,
  admitted,
  type BudgetAmount,
  type BudgetCount,
  budgetDelta,
  type LedgerBudgetRecord,
  newCount,
  nanoUsd,
  NO_BUDGET,
  num,
  ZERO_SPEND,
  usedOf,
  warnMark,
} from './counts.ts';
import { foldSpend } from './fold.ts';
import { Periods, recordIdOf, SpendIds } from './keys.ts';
import { pruneSpend } from './prune.ts';
import { type AdoptedJournal, type JournalMark, journalMarkId, type SpendJournal } from './journal.ts';

export type SpendStore = Pick<CredentialStore, 'get' | 'update'>;

/**
 * How long counts wait in memory before one update adds them all. A file-store update re-reads and
 * rewrites the whole store (measured: 3 ms empty, 28 ms with 6,000 spend records, 126 ms with
 * 30,000; docs/perf/spend-ledger.md), so a flush per answer would cost a busy keyway a core; at
 * 500 ms it is at most two updates a second whatever the traffic, and a replica's view of another's
 * counts is at most this plus the change feed's delay behind.
 */
export const FLUSH_MS = 500;
/** Pruning and folding scan every spend record: once an hour is plenty (hours are folded after days). */
const PRUNE_EVERY_MS = 3_600_000;

export interface SpendLedgerOptions {
  readonly store: SpendStore;
  /** The budgets in force: read on each add and check, so a reload applies at once (the config's `budgets:`). */
  readonly budgets: () => readonly BudgetConfig[];
  /** The clock pruning uses; tests move it. */
  readonly now?: (() => Date) | undefined;
  /** A flush that failed (its counts stay pending and go with the next). */
  readonly onError?: ((err: Error) => void) | undefined;
  /** Where each add is made durable before it counts (journal.ts); none: counts wait in memory only (tests of the arithmetic). */
  readonly journal?: SpendJournal | undefined;
}

interface Claim {
  readonly count: BudgetCount;
  readonly mark: string;
  readonly settle: (won: boolean) => void;
}

/** What one update adds: everything pending when it starts. */
interface Batch {
  readonly spend: Map<string, SpendRecord>;
  readonly counts: BudgetCount[];
  readonly claims: Claim[];
  readonly prune: boolean;
  /** The journal's last seq when the batch was taken: every line up to it is in this batch or an earlier one. */
  readonly mark: number | undefined;
  /** Killed processes' journals whose lines this batch carries: their marks go with it, their folders after it. */
  readonly adopted: AdoptedJournal[];
}

export class SpendLedger implements SpendLedgerApi {
  readonly #o: SpendLedgerOptions;
  readonly #now: () => Date;
  /** Spend record id -> what this process counted and has not yet added. */
  #spend = new Map<string, SpendRecord>();
  /** The spend record ids of this hour's scopes, made once each (keys.ts). */
  readonly #ids = new SpendIds();
  /**
   * The distinct-name cap again, where records are made: under proxy.workers each worker bounds the
   * names on its own audit lines, and this one bounds what the whole keyway adds to the store.
   */
  readonly #names = new ModelNames();
  /** Budget record id -> its count here. */
  readonly #counts = new Map<string, BudgetCount>();
  #claims: Claim[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** The update under way: at most one at a time. */
  #flight: Promise<void> | undefined;
  /** Callers that asked for a flush while one was under way: the next starts when it ends. */
  #queued: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } | undefined;
  #prunedAt = 0;
  #closed = false;
  /** Why the last add could not be journaled (undefined: it was, or there is no journal). */
  #unjournaled: Error | undefined;
  /** Why the last flush failed, until one works: /readyz says the store cannot be written. */
  #writeError: Error | undefined;
  /** Journals of killed processes counted again by recover(), until a flush has them in the store. */
  #adopted: AdoptedJournal[] = [];

  constructor(options: SpendLedgerOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
  }

  add(entry: SpendEntry): void {
    const journal = this.#o.journal;
    if (journal !== undefined) {
      try {
        journal.append(entry);
        this.#unjournaled = undefined;
      } catch (err) {
        // Counted in memory all the same; the caller, asking settled(), keeps the answer's end from the agent.
        this.#unjournaled = err as Error;
      }
    }
    this.#count(entry);
  }

  /** Undefined once every add so far is durable (journaled, or no journal is kept); a rejection when the last could not be. */
  settled(): Promise<void> | undefined {
    const err = this.#unjournaled as NodeJS.ErrnoException | undefined;
    // Its code (ENOSPC, EACCES), never its message (a path).
    return err === undefined ? undefined : Promise.reject(new Error(`model spend cannot be journaled (${err.code ?? 'error'})`));
  }

  /** Why spend counts cannot be added to the store now (the last flush failed), if they cannot. */
  get writeError(): Error | undefined {
    return this.#writeError;
  }

  /**
   * At start: the lines of killed processes' journals (SpendJournal.adopt) that the store does not
   * count yet (after each one's mark: written after its last flush) are counted again, budgets and
   * spend records both, and flushed with their marks; then their folders are deleted. Returns how many.
   */
  async recover(adopted: readonly AdoptedJournal[]): Promise<number> {
    let counted = 0;
    for (const journal of adopted) {
      const mark = this.#o.store.get<JournalMark>(journalMarkId(journal.id));
      const seq = Number.isSafeInteger(mark?.seq) ? mark!.seq : 0;
      for (const line of journal.lines) {
        if (line.seq <= seq) continue;
        this.#count(line.entry);
        counted++;
      }
      this.#adopted.push(journal);
    }
    // A store that cannot be written now: the counts stay pending, the folders kept, and the timer tries again.
    if (this.#adopted.length > 0) await this.flush().catch((err: unknown) => this.#o.onError?.(err as Error));
    return counted;
  }

  #count(entry: SpendEntry): void {
    const e = admitted(entry);
    const model = this.#names.name(e.agent, e.reading.usage?.model ?? null, e.at);
    const spendId = this.#ids.of(e.at, e.agent, e.grant, e.end_user, model);
    // Pending records are this ledger's own (a flush takes the whole map and starts a new one): added to in place.
    let pending = this.#spend.get(spendId);
    if (pending === undefined) {
      pending = { ...ZERO_SPEND };
      this.#spend.set(spendId, pending);
    }
    addEntryTo(pending, e);
    const budgets = this.#o.budgets();
    // Most configs have no budget: no periods or set made per answer then.
    if (budgets.length > 0) this.#addToBudgets(e, budgets);
    if (!this.#closed) this.#timer ??= setTimeout(() => this.#flushOnTimer(), FLUSH_MS).unref();
  }

  #addToBudgets(e: SpendEntry, budgets: readonly BudgetConfig[]): void {
    const amount = budgetDelta(e);
    const periods = new Periods(e.at);
    // Two budgets that select and count alike share one record: it is added to once.
    const seen = new Set<string>();
    for (const budget of budgets) {
      // A delegated agent's answer counts on its ancestors' budgets too (core/budgets.ts scopeValuesOf).
      for (const value of scopeValuesOf(budget, e)) {
        const id = recordIdOf(budget, value, periods);
        if (seen.has(id)) continue;
        seen.add(id);
        const count = this.#countFor(id, budget, e.at);
        count.pending.tokens += amount.tokens;
        count.pending.usd += amount.usd;
      }
    }
  }

  check(scope: SpendScope, now: Date): BudgetVerdict | Promise<BudgetVerdict> {
    const budgets = this.#o.budgets();
    if (budgets.length === 0) return NO_BUDGET;
    let over: BudgetStanding | undefined;
    const toWarn: Array<{ standing: BudgetStanding; count: BudgetCount; mark: string }> = [];
    const periods = new Periods(now);
    for (const budget of budgets)
      for (const value of scopeValuesOf(budget, scope)) {
        const id = recordIdOf(budget, value, periods);
        const stored = this.#o.store.get<LedgerBudgetRecord>(id);
        const count = this.#counts.get(id);
        const limit = limitOf(budget);
        const unit = unitOf(budget);
        const counted = usedOf(count, stored, unit);
        const used = unit === 'usd' ? nanoUsd(counted) : counted;
        const isOver = used >= limit;
        const warnAt = budget.warn_at === undefined ? undefined : unit === 'usd' ? nanoUsd(budget.warn_at * limit) : budget.warn_at * limit;
        const isWarn = warnAt !== undefined && used >= warnAt;
        if (!isWarn && (!isOver || over !== undefined)) continue;
        // A standing (and its Date) only for a budget the caller hears of.
        const standing: BudgetStanding = { budget, scope: value, used, limit, resets_at: periodEnd(budget.per, now) };
        if (over === undefined && isOver) over = standing;
        if (!isWarn) continue;
        const mark = warnMark(limit, budget.warn_at!);
        if (count?.warned.has(mark) || count?.claiming.has(mark) || (Array.isArray(stored?.warned) && stored.warned.includes(mark))) continue;
        toWarn.push({ standing, count: count ?? this.#countFor(id, budget, now), mark });
      }
    if (toWarn.length === 0) return over === undefined ? NO_BUDGET : { over, warn: [] };
    // Past a warning threshold not yet warned of: claimed in the store, so that one check in the
    // whole keyway (workers and replicas) warns. Once per threshold and period: the wait is rare.
    return Promise.all(toWarn.map(({ count, mark }) => this.#claim(count, mark))).then((won) => ({
      over,
      warn: toWarn.filter((_, i) => won[i]).map((w) => w.standing),
    }));
  }

  /** Adds every pending count to the store: one update, after the one under way if any. */
  flush(): Promise<void> {
    if (this.#flight === undefined) return this.#start();
    if (this.#queued === undefined) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#queued = { promise, resolve, reject };
    }
    return this.#queued.promise;
  }

  /** At stop: the last counts go to the store; the timer no longer runs. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const journal = this.#o.journal;
    try {
      await this.flush();
    } catch (err) {
      // A last flush that failed leaves its lines in the journal: the next start adopts and counts them.
      journal?.close(false);
      throw err;
    }
    if (journal === undefined) return;
    // Every line is in the store: the folder goes, then its mark (a kill between leaves a mark nobody reads).
    journal.close(true);
    await this.#o.store.update((draft) => void draft.delete(journal.markId)).catch(() => undefined);
  }

  #countFor(id: string, budget: BudgetConfig, at: Date): BudgetCount {
    let count = this.#counts.get(id);
    if (count === undefined) {
      count = newCount(id, periodEnd(budget.per, at).getTime());
      this.#counts.set(id, count);
    }
    return count;
  }

  #flushOnTimer(): void {
    this.#timer = undefined;
    this.flush().catch((err: unknown) => {
      this.#o.onError?.(err as Error);
      // Kept pending: tried again after another wait, not in a tight loop against a store that is down.
      if (!this.#closed) this.#timer ??= setTimeout(() => this.#flushOnTimer(), FLUSH_MS).unref();
    });
  }

  #claim(count: BudgetCount, mark: string): Promise<boolean> {
    count.claiming.add(mark);
    return new Promise<boolean>((settle) => {
      this.#claims.push({ count, mark, settle });
      // Not on the timer: the check waits for it.
      this.flush().catch(() => undefined);
    });
  }

  /** Takes everything pending into one batch and adds it in one update. */
  #start(): Promise<void> {
    const batch = this.#take();
    if (batch === undefined) return Promise.resolve();
    const flight = this.#write(batch).finally(() => {
      this.#flight = undefined;
      const queued = this.#queued;
      this.#queued = undefined;
      // Started here, synchronously: no flush can slip in between and make two updates at once.
      if (queued) this.#start().then(queued.resolve, queued.reject);
    });
    this.#flight = flight;
    return flight;
  }

  #take(): Batch | undefined {
    const spend = this.#spend;
    const counts: BudgetCount[] = [];
    for (const count of this.#counts.values()) {
      if (count.pending.tokens === 0 && count.pending.usd === 0) continue;
      count.flying = count.pending;
      count.pending = { tokens: 0, usd: 0 };
      counts.push(count);
    }
    const claims = this.#claims;
    const nowMs = this.#now().getTime();
    const prune = nowMs - this.#prunedAt >= PRUNE_EVERY_MS;
    const adopted = this.#adopted;
    if (spend.size === 0 && counts.length === 0 && claims.length === 0 && adopted.length === 0) return undefined;
    this.#spend = new Map();
    this.#claims = [];
    this.#adopted = [];
    const journal = this.#o.journal;
    // Every line appended so far was counted with it: the batch carries the mark of the last one.
    journal?.rotateIfLarge();
    return { spend, counts, claims, prune, mark: journal?.lastSeq, adopted };
  }

  async #write(batch: Batch): Promise<void> {
    const now = this.#now();
    let totals: BudgetAmount[];
    let won: boolean[];
    try {
      [totals, won] = await this.#o.store.update((draft) => {
        for (const [id, delta] of batch.spend) draft.set(id, addSpend(draft.get<SpendRecord>(id), delta));
        // In the same update as the counts: the store holds this journal's lines up to the mark, or none of them.
        if (batch.mark !== undefined && batch.mark > 0) draft.set(this.#o.journal!.markId, { seq: batch.mark } satisfies JournalMark);
        for (const j of batch.adopted) draft.set(journalMarkId(j.id), { seq: j.lastSeq } satisfies JournalMark);
        const sums = batch.counts.map((count) => {
          const held = draft.get<LedgerBudgetRecord>(count.id);
          const flying = count.flying ?? { tokens: 0, usd: 0 };
          const total = { tokens: num(held?.tokens) + flying.tokens, usd: num(held?.usd) + flying.usd };
          draft.set(count.id, { ...held, ...total } satisfies LedgerBudgetRecord);
          count.expect = total;
          return total;
        });
        const claimed = batch.claims.map(({ count, mark }) => {
          const held = draft.get<LedgerBudgetRecord>(count.id);
          const warned = Array.isArray(held?.warned) ? held.warned : [];
          if (warned.includes(mark)) return false;
          draft.set(count.id, { tokens: num(held?.tokens), usd: num(held?.usd), ...held, warned: [...warned, mark] } satisfies LedgerBudgetRecord);
          return true;
        });
        // In this same update: a count is never in two records or in none, whoever else folds.
        if (batch.prune) {
          pruneSpend(draft, now);
          foldSpend(draft, now);
        }
        return [sums, claimed] as const;
      });
    } catch (err) {
      this.#writeError = err as Error;
      this.#restore(batch);
      throw err;
    }
    this.#writeError = undefined;
    if (batch.mark !== undefined) this.#o.journal!.retire(batch.mark);
    if (batch.adopted.length > 0) this.#retireAdopted(batch.adopted);
    batch.counts.forEach((count, i) => {
      count.known = totals[i]!;
      count.flying = undefined;
      count.expect = undefined;
    });
    batch.claims.forEach(({ count, mark, settle }, i) => {
      count.claiming.delete(mark);
      // Won or lost, the warning was given (here or elsewhere): not claimed again this period.
      count.warned.add(mark);
      settle(won[i]!);
    });
    if (batch.prune) this.#prunedAt = now.getTime();
    this.#forgetEnded(now.getTime());
  }

  /** Killed processes' journals now in the store: their folders deleted, then their marks (a kill between leaves marks nobody reads). */
  #retireAdopted(adopted: readonly AdoptedJournal[]): void {
    const gone: string[] = [];
    for (const journal of adopted) {
      try {
        journal.remove();
        gone.push(journalMarkId(journal.id));
      } catch (err) {
        this.#o.onError?.(err as Error);
      }
    }
    if (gone.length === 0) return;
    void this.#o.store
      .update((draft) => {
        for (const id of gone) draft.delete(id);
      })
      .catch(() => undefined);
  }

  /** A failed update: its counts go back to pending (never lost), its claims warn nobody and may be tried again. */
  #restore(batch: Batch): void {
    this.#adopted.push(...batch.adopted);
    for (const [id, delta] of batch.spend) this.#spend.set(id, addSpend(this.#spend.get(id), delta));
    for (const count of batch.counts) {
      const flying = count.flying ?? { tokens: 0, usd: 0 };
      count.pending = { tokens: count.pending.tokens + flying.tokens, usd: count.pending.usd + flying.usd };
      count.flying = undefined;
      count.expect = undefined;
    }
    for (const { count, mark, settle } of batch.claims) {
      count.claiming.delete(mark);
      settle(false);
    }
  }

  /** Counts of ended periods with nothing left to add: memory stays as small as the budgets' live scopes. */
  #forgetEnded(nowMs: number): void {
    for (const [id, count] of this.#counts) {
      if (count.endsAt > nowMs || count.flying !== undefined || count.claiming.size > 0) continue;
      if (count.pending.tokens === 0 && count.pending.usd === 0) this.#counts.delete(id);
    }
  }
}
