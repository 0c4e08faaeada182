import type { ApprovalAsk, ApprovalPass, ApprovalsLimits } from '../approvals/desk.ts';
import type { LimitScope, RateCounter } from '../policy/rate-limits.ts';
import type { SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { AuditSink } from '../audit/index.ts';
import type { LoadedPolicy } from '../policy/cedar/contract.ts';
import type { Config } from '../config/index.ts';
import type { ProxyError } from '../errors/index.ts';
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
import type { HeldNeedles } from './leak-guard/held.ts';
import type { IdentityVerifier } from '../identity-tokens/verifier.ts';

// The driver's contract, at the bottom of proxy/: what the proxy reads from the composition root,
// split by what it is for (the connection's views). A file names the parts it reads (Records for an
// audit line, Decisions for a route), so its reach shows at its head. Nothing here names a file of
// the driver (only leaves: the agent load, the leak guard's needles), so every file may import it
// without closing a circle (test/unit/import-circles.test.ts); nor a feature's room: a feature's
// view is declared beside its stages (stages/views.ts), and runtime.ts puts the two together.

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
  /** The real values keyway holds for each agent, redacted from every answer of its connections (stages/held-values.ts). */
  readonly held?: Held | undefined;
}

/** An agent as its held values are asked for: its id, and the grants it may use (undefined: every grant). */
export interface HeldAgent {
  readonly id: string;
  readonly grants: ReadonlySet<string> | undefined;
}

/**
 * The real values keyway holds that could reach an agent (a captured login's tokens, the
 * credentials it put on requests), looked for in every answer of the agent's connections: the
 * exchange notes what it serves and asks for the agent's needles (stages/held-values.ts keeps them).
 */
export interface Held {
  /** A credential keyway put on a request under `grant`. */
  noteServed(grant: string, credential: Credential): void;
  /** The agent's held needles, or undefined when keyway holds nothing for it. */
  forAgent(agent: HeldAgent): HeldNeedles | undefined;
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
  /** WebSockets and answers still open under a grant: ended by the sweep when the grant or login no longer stands. */
  readonly openExchanges: OpenBooks;
}

/**
 * The books of what is still open under a grant (open-exchanges.ts keeps them): the stage
 * open-exchange puts a request on them, its close takes it off, and the sweep ends each that no
 * longer stands.
 */
export interface OpenBooks {
  add(entry: OpenEntry): void;
  delete(entry: OpenEntry): void;
  readonly size: number;
  /** Ends each open exchange that no longer stands; returns how many were ended. */
  sweep(): number;
}

/** What the books hold: a request (stages/request.ts), with its place on them, ended when it no longer stands. */
export interface OpenEntry {
  openLink: OpenLink | undefined;
  /** Ends what the request holds open: its audit line says why. */
  revoke(error: ProxyError): void;
}

/** An entry's place on the books: a link in their list (OpenEntry.openLink). */
export interface OpenLink {
  prev: OpenLink | undefined;
  next: OpenLink | undefined;
  readonly request: OpenEntry;
}

/**
 * keyway's door for an agent's own children (proxy/delegation-door.ts), built by the composition
 * root over the operations the command line uses: minting and revoking as the connection's agent.
 * Absent (a runtime without a store to write): the door answers not_found.
 */
export interface Delegating {
  readonly delegation?: DelegationDoor | undefined;
}

/** What the door read from a mint's body, checked for shape; the child's id is already `PARENT-…`. */
export interface DoorMint {
  readonly id: string;
  readonly grants: string[] | undefined;
  readonly rules: unknown;
  readonly ttl: string | undefined;
  readonly depth: number | undefined;
  /** Its own spend budget (`usd=2/day`, or the config's budget form): the operation reads it. */
  readonly budget: unknown;
}

/** The minted child, as the door answers it (its key once). */
export interface DoorChild {
  readonly id: string;
  readonly parent: string;
  readonly key: string;
  readonly grants: string[] | null;
  readonly chain: string[];
  readonly expires_at: string;
  readonly depth: number;
  /** The proxy URL with the child's key, where the proxy listens; null before it listens. */
  readonly proxy_url: string | null;
}

/** Throws KeywayError (delegation_refused, delegation_limited with retryAfter, usage, conflict, not_found). */
export interface DelegationDoor {
  /** Mints for `parent` as it signed in: refused if its key is no longer the one it signed in with. */
  mint(
    parent: {
      readonly id: string;
      readonly keySha256: Buffer | undefined;
      readonly identityTieSha256?: Buffer | undefined;
      readonly identityExpiresAt?: number | undefined;
    },
    input: DoorMint,
  ): Promise<DoorChild>;
  /** Removes `id` and its descendants, if `ancestor` is an ancestor of it; not_found otherwise. */
  revoke(ancestor: string, id: string): Promise<{ removed: string[] }>;
}
