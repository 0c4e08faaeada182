import type { ApprovalAsk, ApprovalPass, ApprovalsLimits } from '../approvals/desk.ts';
import type { LimitScope, RateCounter } from '../policy/rate-limits.ts';
import type { SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { AuditSink } from '../audit/index.ts';
import type { LoadedPolicy } from '../policy/cedar/contract.ts';
import type { Config } from '../config/index.ts';
import type { IssuedCredential } from '../credentials/issuing/issued-credential.ts';
import type { OnBehalf } from '../credentials/types/index.ts';
import type { LeaseRecord } from '../credentials/lease-record.ts';
import type { Grant } from '../credentials/grant.ts';
import type { Credential } from '../credentials/material.ts';
import type { ProxyTables } from '../credentials/tables.ts';
import type { ListenerRegistry } from '../egress/listener-registry.ts';
import type { Resolver } from '../egress/resolve.ts';
import type { Upstream } from '../egress/upstream.ts';
import type { KeywayMetrics } from '../observability/metrics/index.ts';
import type { AgentLoad } from './agent-load.ts';
import type { HeldValues } from './held-values.ts';
import type { CaptureBook } from '../capture/store/records.ts';
import type { IdentityVerifier } from '../identity-tokens/verifier.ts';
import type { BudgetStanding, BudgetVerdict, SpendScope } from '../spend/core/ledger.ts';
import type { SpendRecorder } from './model-exchange.ts';

// The driver's contract, at the bottom of proxy/: what the proxy reads from the composition root,
// split by what it is for (the connection's views). A file names the parts it reads (Records for an
// audit line, Decisions for a route), so its reach shows at its head. Nothing here names a file of
// the driver (only leaves: the agent load, the held values, the spend recorder), so every file may
// import it without closing a circle (test/unit/import-circles.test.ts).

/** What a decision reads: the tables, the config, the clock, leases, and where keyway itself listens. */
export interface Decisions {
  readonly config: Config;
  tables(): ProxyTables;
  /** The clock policy decisions use (time windows, leases); tests may pin it. */
  now(): Date;
  /** The policy in force (the YAML rules compiled, Cedar files, its hash): policy/cedar/load.ts, swapped at a reload. */
  policy(): LoadedPolicy;
  /** Agents' leases on grants (the second clock): read from memory, started on first use. */
  readonly leases: {
    get(agentId: string, grantId: string): LeaseRecord | undefined;
    /** Stores a lease that a first use starts, unless another process stored one first. */
    start(record: LeaseRecord): Promise<void>;
  };
  /** Request rates (config `limits:`), one token bucket per agent, grant, or agent on a grant: per replica, shared by its workers. */
  readonly rates: RateCounter;
  /** Quotas per UTC day, counted in the store (quotas/ledger.ts). */
  readonly quotas: {
    /** One request of the scope's quota: true, false, or a promise of either. */
    take(scope: LimitScope, perDay: number, now: Date): boolean | Promise<boolean>;
    /** Body bytes of the scope counted today, as far as this process knows. */
    bytesUsed(scope: LimitScope, now: Date): number;
    /** A finished request's body bytes, added to each scope's count. */
    addBytes(scopes: readonly LimitScope[], bytes: number, now: Date): void;
  };
  /** Requests a rule sends to a person (approve: human): asked, held, let go (approvals/desk.ts). */
  readonly approvals: {
    pass(ask: ApprovalAsk): Promise<ApprovalPass>;
    limits(): ApprovalsLimits;
  };
  /** Ports keyway itself listens on: never a destination. */
  readonly ownPorts: ReadonlySet<number>;
  /** Every keyway's listeners on this host (other homes, other users): never a destination either. */
  readonly listeners: Pick<ListenerRegistry, 'mayListenOn' | 'listenerOn'>;
  /** The issuers whose identity tokens agents may sign in with (config identities:); undefined: none. */
  identities(): IdentityVerifier | undefined;
  /** Set for `keyway fetch`'s own proxy: the one-time key its caller's proxy credentials carry (identify/agent.ts). */
  readonly callerKey?: string | undefined;
}

/** What issuing a credential reads: the credential source and the grant's usage stamp. */
export interface Issuing {
  readonly credentials: {
    /** A valid credential for the grant (refreshing an OAuth token first when due); throws a ProxyError. */
    get(grant: Grant, host?: string, forWhom?: OnBehalf): IssuedCredential | Promise<IssuedCredential>;
    /** After the upstream refused `used` (401): a refreshed credential for one replay. */
    afterRejection(grant: Grant, used: Credential, forWhom?: OnBehalf): Promise<IssuedCredential>;
  };
  grantUsed(grantId: string): void;
  /** The upstream answered a request carrying the grant's credential (401: it refused it; app/usage-recorder.ts). */
  grantAnswered(grantId: string, status: number): void;
  /** Captured tokens (capture grants): looked up by placeholder, saved at capture, locked per refresh token. */
  readonly captures: Pick<CaptureBook, 'find' | 'read' | 'save' | 'lock'>;
  /** The real values keyway holds for each agent, redacted from every answer of its connections (held-values.ts). */
  readonly held?: Pick<HeldValues, 'forAgent' | 'noteServed'> | undefined;
}

/** Where a request leaves its trace: the audit line, the metrics it is counted in, the app log. */
export interface Records {
  readonly audit: AuditSink;
  /** Counts each request when its audit line is committed (audit-event.ts). */
  readonly metrics: Pick<KeywayMetrics, 'request'>;
  readonly logger: Logger;
}

/** The wire: the client leg's TLS, the outbound client, and each agent's share of keyway. */
export interface Transport {
  tlsContext(host: string): SecureContext;
  readonly upstream: Upstream;
  readonly resolve: Resolver;
  /** Each agent's requests in flight and body bytes kept for a replay, against their limits. */
  readonly load: AgentLoad;
  // And `openExchanges`, the books of what is open under a grant: declared by open-exchanges.ts.
}

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

/** Everything the proxy reads, built once by the composition root. */
export type ProxyRuntime = Decisions & Issuing & Records & Transport & Spending;
