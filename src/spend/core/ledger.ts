import type { BudgetConfig } from '../../config/spend.ts';
import type { ModelUsage, UsageReading } from './usage.ts';

// The spend ledger's surface, as the proxy uses it (spend/ledger/ledger.ts implements it; under
// proxy.workers a worker's ledger asks the primary's over IPC, so that counts and budget checks are
// exact across the workers; replicas share the store's records).

/** Who a request is for: the budgets' selectors. */
export interface SpendScope {
  readonly agent: string | null;
  readonly grant: string;
  /** The subject an identity token proved, when one did. */
  readonly end_user: string | null;
  /**
   * A delegated agent's ancestors, root first (issue 89): a budget on any of them counts this
   * spend too, so a parent's budget holds its own and its descendants'. undefined: a root agent.
   */
  readonly ancestors?: readonly string[] | undefined;
}

/** One metered model answer, as it is added to the ledger. */
export interface SpendEntry extends SpendScope {
  readonly at: Date;
  readonly reading: UsageReading;
  /** Its price in USD; null when the model had no price (or the usage is unknown). */
  readonly cost_usd: number | null;
}

/** A budget the request falls under, and where its count stands. */
export interface BudgetStanding {
  readonly budget: BudgetConfig;
  /** The scope value counted (the agent, grant or end user this count is for). */
  readonly scope: string;
  /** In the budget's unit (usd or tokens). */
  readonly used: number;
  readonly limit: number;
  /** When the period ends (UTC): the hint's "resets at". */
  readonly resets_at: Date;
}

export interface BudgetVerdict {
  /** The first budget the request is at or over, if any (refuse, or hold for approval). */
  readonly over: BudgetStanding | undefined;
  /** Budgets past their warn_at and not yet warned of in this period (the caller tells a person). */
  readonly warn: readonly BudgetStanding[];
}

export interface SpendLedgerApi {
  /** Counts one answer (in memory at once; in the store within a second). */
  add(entry: SpendEntry): void;
  /**
   * Undefined once every add so far is durable (it survives this process's crash: spend/ledger/journal.ts);
   * else a promise that resolves when they are, or rejects when they cannot be. An answer's end
   * waits on it before it reaches the agent.
   */
  settled(): Promise<void> | undefined;
  /** The budgets on `scope` and where each stands, with this process's and every process's counts. */
  check(scope: SpendScope, now: Date): BudgetVerdict | Promise<BudgetVerdict>;
  /** Adds every pending count to the store. */
  flush(): Promise<void>;
  /** Why the last flush failed, while flushes fail (/readyz: the store cannot be written); a worker's ledger has none (its primary's says). */
  readonly writeError?: Error | undefined;
  close(): Promise<void>;
}

export type { ModelUsage };
