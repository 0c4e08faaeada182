import type { CaptureBook } from '../../capture/store/records.ts';
import type { BudgetStanding, BudgetVerdict, SpendScope } from '../../spend/core/ledger.ts';
import type { SpendRecorder } from './model-exchange.ts';
import type { AnomalyBook } from '../../anomaly/book/book.ts';

// The features' views: what their stages read of the state keyway holds. Declared here, beside the
// stages, because they are made of their rooms' types (spend/, capture/), which in src/proxy/ only
// the stages import; the driver's own views are contract.ts's, and runtime.ts puts the two
// together. The composition root builds each (app/parts.ts); a stage reaches it as it reaches the
// driver's (conn.spending, conn.issuing.captures: connection.ts).

/** Model spend (config pricing: and budgets:, issue 63): prices, the ledger's counts and budgets. */
export interface Spending {
  readonly spend: SpendRecorder & {
    /** Whether any budget applies to `scope` (none: no check, no IPC). */
    budgeted(scope: SpendScope): boolean;
    /** Where each budget on `scope` stands, with every process's counts (a worker asks its primary). */
    check(scope: SpendScope, now: Date): BudgetVerdict | Promise<BudgetVerdict>;
    /** A budget passed its warn_at: a person is told (approvals.notify), once per period. */
    warn(standing: BudgetStanding, scope: SpendScope | undefined): void;
  };
}

/** Login capture, read beside issuing (a captured token is a credential keyway puts on requests). */
export interface Captures {
  /** Captured tokens (capture grants): looked up by placeholder, saved at capture, locked per refresh token. */
  readonly captures: Pick<CaptureBook, 'find' | 'read' | 'save' | 'lock'>;
}

/** Anomaly holds (config anomaly:, issue 90): the agents' histories, alerts told, holds waiting. */
export interface Anomalies {
  readonly anomaly: Pick<AnomalyBook, 'judge' | 'count' | 'learn' | 'wouldLearn'> & {
    /** An alert, told through approvals.notify (if set); never throws. */
    alert(payload: Record<string, unknown>, agent: string): void;
    /** Anomaly holds of this agent waiting for a person now, on every process (approval records in the store). */
    holdsWaiting(agent: string): number;
  };
}

/** Every feature's view, as the proxy's runtime carries them (runtime.ts). */
export type FeatureViews = Spending & Captures & Anomalies;
