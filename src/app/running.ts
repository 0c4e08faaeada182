import type { Server as NetServer } from 'node:net';
// The handle startKeyway returns: where keyway listens, its counts, reload, and stop.
import type { AddressInfo } from 'node:net';
import { containStartEvent } from './contain-door.ts';
import type { AdminServer } from '../admin/server.ts';
import type { DomainPattern } from '../config/domain-pattern.ts';
import type { Registration } from '../egress/listener-registry.ts';
import type { ProxyServer } from '../proxy/driver/server.ts';
import type { RedirectedPort } from '../proxy/transparent/listener.ts';
import { withdrawRunningProxy } from '../running-proxy.ts';
import type { Services } from '../open-home.ts';
import type { CertificateAuthority } from '../tls/index.ts';
import type { MinuteCount } from '../observability/counting-audit.ts';
import type { Closers } from './closers.ts';
import type { ReloadOutcome } from './live-config.ts';
import type { Parts } from './parts.ts';

export interface RunningKeyway {
  readonly services: Services;
  readonly ca: CertificateAuthority;
  readonly proxyAddress: AddressInfo;
  readonly adminAddress: AddressInfo | undefined;
  /** Client connections the proxy holds now (CONNECTs, tunnels, kept-alive HTTP). */
  connectionCount(): number;
  /** Serves connections redirected to a listening socket opened elsewhere (keyway run --contain), as `agent`: one port's, or the rest's. */
  acceptRedirected(handle: NetServer, agent: string | undefined, ports: RedirectedPort): void;
  /** The audit line of a contained run that may reach host Unix sockets (keyway run --contain --allow-socket). */
  auditContainStart(agent: string | undefined, sockets: readonly string[]): Promise<void>;
  /** Grants and agents in the tables now (config and store): the start banner shows them. */
  counts(): { grants: number; agents: number };
  /** The grants (id, domains) and agents (id, where from, the grants it may use) in the tables now: the start banner's next steps. */
  inventory(): {
    grants: Array<{ id: string; domains: readonly DomainPattern[] }>;
    agents: Array<{ id: string; source: string; grants: ReadonlySet<string> | undefined }>;
  };
  /** Re-reads the config file (SIGHUP): applied to new requests, or refused with the reason. `quiet`: not audited (a worker's, which its primary audits). */
  reload(signal?: string, quiet?: boolean): Promise<ReloadOutcome>;
  /** proxy.transparent's listeners, where they are bound. */
  readonly transparentAddresses: { readonly tls?: AddressInfo | undefined; readonly http?: AddressInfo | undefined };
  /** What it has served since it started, for a primary's `keyway status` and dashboard (proxy.workers). */
  activity(): WorkerActivity;
  /** Its metrics as prom-client's JSON, for a primary to sum (proxy.workers). */
  metricsJson(): Promise<unknown[]>;
  /** Refuses one more port as a destination: a primary's admin listener, bound after its workers. */
  refusePort(port: number): void;
  /** Under proxy.workers: the worker processes' pids now. */
  workerPids?: (() => number[]) | undefined;
  /**
   * Stops accepting, lets requests in flight finish for up to `drainMs` (default 0: close at
   * once), then closes everything. Calling it again returns the same promise.
   */
  stop(options?: { drainMs?: number }): Promise<void>;
}

/** Proxied requests served and refused since start, and the last hour minute by minute. */
export interface WorkerActivity {
  readonly connections: number;
  readonly requests: number;
  readonly refused: number;
  readonly minutes: MinuteCount[];
  readonly auditHealthy: boolean;
}

/** The listeners start bound, beside the parts they serve. */
export interface Listening {
  readonly proxy: ProxyServer;
  readonly proxyAddress: AddressInfo;
  readonly admin: AdminServer | undefined;
  readonly registration: Registration | undefined;
}

export function runningKeyway(parts: Parts, listening: Listening, closers: Closers): RunningKeyway {
  const { services, live } = parts;
  const { proxy, proxyAddress, admin, registration } = listening;
  let stopping: Promise<void> | undefined;
  return {
    services,
    ca: parts.ca,
    proxyAddress,
    adminAddress: admin?.address,
    connectionCount: () => proxy.connectionCount(),
    acceptRedirected: (handle, agent, ports) => void proxy.acceptRedirected(handle, agent, ports),
    auditContainStart: (agent, sockets) => parts.audit.write(containStartEvent(agent, sockets)),
    counts: () => ({ grants: live.grantCount, agents: live.tables.agents.list().length }),
    inventory: () => ({ grants: live.tables.router.list(), agents: live.tables.agents.list() }),
    reload: (signal = 'SIGHUP', quiet = false) =>
      live.reload({ method: null, path: null, host: proxyAddress.address, port: proxyAddress.port, client: signal, actor: signal, quiet }),
    transparentAddresses: {
      tls: proxy.transparent.tls?.listening ? (proxy.transparent.tls.address() as AddressInfo) : undefined,
      http: proxy.transparent.http?.listening ? (proxy.transparent.http.address() as AddressInfo) : undefined,
    },
    activity: () => ({
      connections: proxy.connectionCount(),
      requests: parts.audit.requests,
      refused: parts.audit.refused,
      minutes: parts.audit.recent.snapshot(),
      auditHealthy: parts.audit.healthy,
    }),
    metricsJson: async () => (await (await parts.metrics.registry()).getMetricsAsJSON()) as unknown[],
    refusePort: (port) => void parts.ownPorts.add(port),
    stop(stopOptions = {}) {
      stopping ??= stopKeyway(parts, closers, registration, stopOptions.drainMs ?? 0, (drainMs) =>
        Promise.all([proxy.close(drainMs), admin?.close(drainMs)]).then(() => undefined),
      );
      return stopping;
    },
  };
}

/**
 * Stops what start built: agents and the CLI stop finding this process at once; requests held for
 * a person's yes are refused (they would hold the drain to its end); `closeListeners` drains the
 * listeners for up to `drainMs`; then usage, tokens refreshed but not yet saved (one last try) and
 * every part, newest first. Requests in flight still need the store and the audit log: they close last.
 */
export async function stopKeyway(
  parts: Parts,
  closers: Closers,
  registration: Registration | undefined,
  drainMs: number,
  closeListeners: (drainMs: number) => Promise<void>,
): Promise<void> {
  const { logger } = parts;
  withdrawRunningProxy(parts.services.paths.runningProxy);
  registration?.remove();
  await parts.approvals.stop();
  await closeListeners(drainMs);
  await parts.usage.flush().catch(() => undefined);
  // A refreshed token whose save failed lives only in memory: one last try before exiting.
  const lost = await parts.tokens.settlePending(Math.max(drainMs, 2_000));
  if (lost.length > 0) logger.error({ grants: lost }, 'refreshed tokens could not be saved before stopping; these grants need `keyway connect`');
  const failed = await closers.closeAll();
  if (failed.length > 0) logger.debug({ parts: failed }, 'some parts failed to close while stopping');
}
