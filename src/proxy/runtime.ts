import type { SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { AuditSink } from '../audit/index.ts';
import type { Config } from '../config/index.ts';
import type { AgentTable } from '../credentials/agents.ts';
import type { Grant } from '../credentials/grants.ts';
import type { IssuedCredential } from '../credentials/credential-source.ts';
import type { Credential } from '../credentials/material.ts';
import type { LeaseRecord } from '../credentials/lease-record.ts';
import type { KeywayMetrics } from '../metrics/index.ts';
import type { GrantRouter } from '../policy/access.ts';
import type { AgentLoad } from './agent-load.ts';
import type { ListenerRegistry } from './listener-registry.ts';
import type { Resolver } from './resolve.ts';
import type { Upstream } from './upstream.ts';

/** The tables the proxy reads per request, swapped whole by the app when the store changes. */
export interface ProxyTables {
  readonly router: GrantRouter<Grant>;
  readonly agents: AgentTable;
}

/** Everything the proxy needs, built by the composition root (app.ts). */
export interface ProxyRuntime {
  readonly config: Config;
  /** Ports keyway itself listens on: never a destination. */
  readonly ownPorts: ReadonlySet<number>;
  /** Every keyway's listeners on this host (other homes, other users): never a destination either. */
  readonly listeners: Pick<ListenerRegistry, 'mayListenOn' | 'listenerOn'>;
  /**
   * Set for `keyway fetch`'s own proxy: the one-time key its request carries in the proxy
   * credentials (identify.ts); a client without it is refused with 407.
   */
  readonly callerKey?: string | undefined;
  tables(): ProxyTables;
  readonly credentials: {
    /** A valid credential for the grant (refreshing an OAuth token first when due); throws a ProxyError. */
    get(grant: Grant): Promise<IssuedCredential>;
    /** After the upstream refused `used` (401): a refreshed credential for one replay. */
    afterRejection(grant: Grant, used: Credential): Promise<IssuedCredential>;
  };
  readonly audit: AuditSink;
  /** Counts each request when its audit line is committed (audit-event.ts). */
  readonly metrics: Pick<KeywayMetrics, 'request'>;
  tlsContext(host: string): SecureContext;
  readonly upstream: Upstream;
  /** Each agent's requests in flight and body bytes kept for a replay, against their limits. */
  readonly load: AgentLoad;
  readonly resolve: Resolver;
  readonly logger: Logger;
  grantUsed(grantId: string): void;
  /** The clock policy decisions use (time windows, leases); tests may pin it. */
  now(): Date;
  /** Agents' leases on grants (the second clock): read from memory, started on first use. */
  readonly leases: {
    get(agentId: string, grantId: string): LeaseRecord | undefined;
    /** Stores a lease that a first use starts, unless another process stored one first. */
    start(record: LeaseRecord): Promise<void>;
  };
}
