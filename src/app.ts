import { hostname } from 'node:os';
import { once } from 'node:events';
import type { AddressInfo, Server } from 'node:net';
import type { Logger } from 'pino';
import type { AdminServer } from './admin/server.ts';
import { auditDatabaseOf, AuditWriter, createAppLogger, logRetention, RefusalBudget, TableAuditWriter, type AuditLog } from './audit/index.ts';
import type { ListenAddress } from './config/index.ts';
import { USAGE_PREFIX, usageRecordId, type GrantUsage } from './credentials/grant-record.ts';
import { leaseRecordId, type LeaseRecord } from './credentials/lease-record.ts';
import { CredentialSource } from './credentials/credential-source.ts';
import { tokenManagerFor } from './credentials/providers/config-tokens.ts';
import type { Resolver } from './proxy/resolve.ts';
import type { ProxyRuntime } from './proxy/runtime.ts';
import { LiveConfig, type ReloadOutcome } from './live-config.ts';
import { CountingAudit } from './counting-audit.ts';
import { KeywayMetrics } from './metrics/index.ts';
import { createProxyServer } from './proxy/server.ts';
import { AgentLoad } from './proxy/agent-load.ts';
import { ListenerRegistry, listenersDir, registerListeners, type KeywayListener, type Registration } from './proxy/listener-registry.ts';
import { createUpstream } from './proxy/upstream.ts';
import { openServices, type Services } from './services.ts';
import { announceRunningProxy, listenFailure, withdrawRunningProxy } from './running-proxy.ts';
import { loadOrCreateCa, LeafMinter, SecureContextCache, writeBundleInChild, type BundleWriter, type CertificateAuthority } from './tls/index.ts';
import { proxyUrlFor, resolveFromHome } from './config/index.ts';
import { loadConfigIsolated } from './config/load-isolated.ts';

export interface StartOptions {
  home: string;
  configFile?: string | undefined;
  /** Overrides proxy.listen (keyway start --listen). */
  listen?: ListenAddress | undefined;
  /** Overrides admin.listen; tests pass port 0. */
  adminListen?: ListenAddress | undefined;
  /** The clock for policy (time windows, leases): tests pin it. */
  now?: (() => Date) | undefined;
  /** The clock for OAuth token expiry and refresh backoff (epoch ms): tests move it forward instead of sleeping. */
  tokenClock?: (() => number) | undefined;
  /** Replaces the system resolver (after proxy.hosts): tests script DNS answers with it. */
  dns?: Resolver | undefined;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /**
   * Write data/proxy.json so the CLI and clients find this proxy (default true). A proxy started
   * for one command (`keyway fetch` when none runs) keeps itself to itself.
   */
  announce?: boolean | undefined;
  /** `keyway fetch`'s own proxy: the one-time key its request must carry (ProxyRuntime.callerKey). */
  callerKey?: string | undefined;
}

export interface RunningKeyway {
  readonly services: Services;
  readonly ca: CertificateAuthority;
  readonly proxyAddress: AddressInfo;
  readonly adminAddress: AddressInfo | undefined;
  /** Client connections the proxy holds now (CONNECTs, tunnels, kept-alive HTTP). */
  connectionCount(): number;
  /** Grants and agents in the tables now (config and store): the start banner shows them. */
  counts(): { grants: number; agents: number };
  /** Re-reads the config file (SIGHUP): applied to new requests, or refused with the reason. */
  reload(signal?: string): Promise<ReloadOutcome>;
  /**
   * Stops accepting, lets requests in flight finish for up to `drainMs` (default 0: close at
   * once), then closes everything. Calling it again returns the same promise.
   */
  stop(options?: { drainMs?: number }): Promise<void>;
}

/**
 * Makes what a first start needs: the CA, the master key, the store. Returns the opened services.
 * `writeBundle`: how the CA bundle is written, if it must be (in this process by default; the
 * proxy, which runs for days, has a child do it: Node would keep the system roots it read).
 */
export async function initialise(
  options: Pick<StartOptions, 'home' | 'configFile' | 'env'>,
  writeBundle?: BundleWriter,
): Promise<{ services: Services; ca: CertificateAuthority }> {
  const services = await openServices({ home: options.home, configFile: options.configFile, env: options.env, loadConfig: loadConfigIsolated });
  const ca = await loadOrCreateCa(services.paths.certsDir, writeBundle);
  return { services, ca };
}

/** The composition root: builds every part from the config, starts listening, reloads on change. */
export async function startKeyway(options: StartOptions): Promise<RunningKeyway> {
  const env = options.env ?? process.env;
  const logger = options.logger ?? createAppLogger();
  const startedAt = new Date().toISOString();
  const { services, ca } = await initialise(options, writeBundleInChild);
  const { store } = services;

  // Start is all or nothing: each part opened registers how to close it, and any failure (a
  // port in use above all) closes them all, newest first, before the error goes up. Nothing is
  // announced in data/proxy.json until every listener is up.
  const opened: Array<() => unknown> = [() => (store.end ? store.end() : store.close())];
  const closeOpened = async () => {
    for (const close of opened.splice(0).reverse())
      await Promise.resolve()
        .then(close)
        .catch(() => undefined);
  };
  try {
    return await startParts(options, env, logger, services, ca, opened, closeOpened, startedAt);
  } catch (err) {
    await closeOpened();
    throw err;
  }
}

async function startParts(
  options: StartOptions,
  env: NodeJS.ProcessEnv,
  logger: Logger,
  services: Services,
  ca: CertificateAuthority,
  opened: Array<() => unknown>,
  closeOpened: () => Promise<void>,
  startedAt: string,
): Promise<RunningKeyway> {
  const { config, paths, store } = services;
  const metrics = new KeywayMetrics();
  // Refusals past their budgets are folded into summary lines (audit/refusal-budget.ts); closing it
  // writes the summaries still pending, then closes the writer.
  const auditWriter = new RefusalBudget(await openAuditLog(services, env, metrics, logger), {
    budget: config.audit.refusal_budget,
    intervalMs: config.audit.refusal_interval,
  });
  opened.push(() => auditWriter.close());
  const audit = new CountingAudit(auditWriter);
  const contexts = new SecureContextCache(new LeafMinter(ca));
  // The config in force and the tables built from it: a store change rebuilds the tables, a reload
  // (SIGHUP, `keyway reload`, POST /api/reload) everything the request path reads.
  const live = new LiveConfig({
    services,
    env,
    load: () => loadConfigIsolated({ home: options.home, file: options.configFile }),
    dns: options.dns,
    audit: auditWriter,
    logger,
  });
  // Every destination an agent names is checked after resolution; token endpoints, which only the
  // user configures, are not (a local authorization server is legitimate).
  const { resolve, lookupHost } = live;
  const extraCaFiles = config.proxy.upstream_ca.map((p) => resolveFromHome(config, p));
  const upstream = createUpstream({ resolve, extraCaFiles, headersTimeoutMs: config.proxy.timeouts.upstream });
  opened.push(() => upstream.close());
  const tokenEndpoints = createUpstream({ resolve: lookupHost, extraCaFiles, headersTimeoutMs: config.oauth.token_timeout });
  opened.push(() => tokenEndpoints.close());

  // The request path reads the tables only; a store change (a CLI write) rebuilds them whole.
  // Not a change to usage records alone: the recorder below writes those every few seconds under
  // traffic, and rebuilding (and logging "store changed") for each of them was wasted work and noise.
  let tableInputs = recordsBesideUsage(store);
  store.watch(
    () => {
      const inputs = recordsBesideUsage(store);
      if (sameRecords(inputs, tableInputs)) return;
      tableInputs = inputs;
      try {
        live.rebuildTables();
        logger.info('store changed: grants and agents reloaded');
      } catch (err) {
        logger.error({ err: { message: (err as Error).message } }, 'reload failed; keeping the previous grants');
      }
    },
    250,
    (err) => logger.error({ err: { message: err.message } }, 'store could not be re-read; keeping the previous grants'),
  );

  // Token endpoints are reached like upstreams (proxy.hosts, system CAs plus proxy.upstream_ca).
  const tokens = tokenManagerFor(() => live.config, {
    store,
    lockDir: paths.locksDir,
    env,
    dispatcher: tokenEndpoints.dispatcher,
    logger,
    now: options.tokenClock,
    observer: metrics,
  });
  const usage = new UsageRecorder(services);
  opened.push(() => usage.stop());
  // The proxy never connects to its own listeners (a loop); filled in once they listen. Nor to
  // any other keyway's on this host (another home's, a `keyway fetch`'s): the shared registry.
  const ownPorts = new Set<number>();
  const registryDir = listenersDir(env);
  const listeners = new ListenerRegistry(registryDir);
  opened.push(() => listeners.close());
  const runtime: ProxyRuntime = {
    get config() {
      return live.config;
    },
    ownPorts,
    listeners,
    callerKey: options.callerKey,
    tables: () => live.tables,
    credentials: new CredentialSource(tokens),
    audit,
    metrics,
    tlsContext: (host) => contexts.get(host),
    upstream,
    load: new AgentLoad(() => live.config.proxy),
    resolve,
    logger,
    grantUsed: (id) => usage.touch(id),
    now: options.now ?? (() => new Date()),
    leases: {
      get: (agentId, grantId) => store.get<LeaseRecord>(leaseRecordId(agentId, grantId)),
      start: async (record) => {
        const id = leaseRecordId(record.agent, record.grant);
        await store.update((draft) => {
          if (!draft.get(id)) draft.set(id, record);
        });
      },
    },
  };

  const proxy = createProxyServer(runtime);
  opened.push(() => proxy.close(0));
  const listen = options.listen ?? config.proxy.listen;
  await listenOn(proxy.listener, listen, 'proxy.listen', paths.runningProxy);
  const proxyAddress = proxy.listener.address() as AddressInfo;
  live.onApply((next) => proxy.retime(next.proxy.timeouts));
  ownPorts.add(proxyAddress.port);
  metrics.watch({
    openConnections: () => proxy.connectionCount(),
    certificates: () => contexts.stats,
    audit: () => ({ queued: auditWriter.pendingLines, dropped: auditWriter.droppedLines, held: auditWriter.retentionHold ?? null }),
  });

  let admin: AdminServer | undefined;
  if (config.admin.enabled) {
    const adminListen = options.adminListen ?? config.admin.listen;
    // Loaded only when there is an admin listener: its modules (API, dashboard, OAuth connect)
    // are ~0.5 MiB of heap and ~1 MiB of RSS a proxy without one never needs.
    const [{ startAdminServer }, { readinessOf }] = await Promise.all([import('./admin/server.ts'), import('./admin/readiness.ts')]);
    try {
      const activity = () => ({
        pid: process.pid,
        started_at: startedAt,
        requests: audit.requests,
        refused: audit.refused,
        minutes: audit.recent.snapshot(),
      });
      const reload = (client: string) =>
        live.reload({ method: 'POST', path: '/api/reload', host: admin?.address.address ?? adminListen.host, port: admin?.address.port ?? 0, client });
      const readiness = () =>
        readinessOf({
          ca,
          store,
          audit,
          retention: () => auditWriter.retentionHold ?? null,
          minRetentionMs: config.audit.min_retention,
          rotation: () => auditWriter.rotationError ?? null,
        });
      admin = await startAdminServer({
        services,
        listen: adminListen,
        agents: () => live.tables.agents,
        audit,
        adminAudit: auditWriter,
        activity,
        reload,
        readiness,
        metrics,
        env,
        tokens: { tokens, dispatcher: tokenEndpoints.dispatcher },
        proxyUrl: (credentials) => proxyUrlFor({ host: proxyAddress.address, port: proxyAddress.port }, credentials),
        oauth: { config: () => live.config, env, dispatcher: tokenEndpoints.dispatcher },
      });
    } catch (err) {
      throw isListenError(err) ? await listenFailure(err, 'admin.listen', adminListen, paths.runningProxy) : err;
    }
    const started = admin;
    opened.push(() => started.close(0));
    ownPorts.add(admin.address.port);
  }
  logger.info({ proxy: `${proxyAddress.address}:${proxyAddress.port}`, admin: admin?.address.port ?? null }, 'keyway is listening');
  const registration = await announceListeners(registryDir, proxyAddress, admin?.address, logger);
  opened.push(() => registration?.remove());
  const listening = (a: AddressInfo) => ({ host: a.address, port: a.port });
  if (options.announce !== false)
    await announceRunningProxy(paths.runningProxy, { proxy: listening(proxyAddress), admin: admin ? listening(admin.address) : null, started_at: startedAt });

  let stopping: Promise<void> | undefined;
  return {
    services,
    ca,
    proxyAddress,
    adminAddress: admin?.address,
    connectionCount: () => proxy.connectionCount(),
    counts: () => ({ grants: live.grantCount, agents: live.tables.agents.list().length }),
    reload: (signal = 'SIGHUP') => live.reload({ method: null, path: null, host: proxyAddress.address, port: proxyAddress.port, client: signal }),
    stop(stopOptions = {}) {
      stopping ??= (async () => {
        // Agents and the CLI stop finding this process at once; requests in flight still need
        // the store (a refresh) and the audit log, which close last.
        const drainMs = stopOptions.drainMs ?? 0;
        withdrawRunningProxy(paths.runningProxy);
        registration?.remove();
        await Promise.all([proxy.close(drainMs), admin?.close(drainMs)]);
        await usage.flush().catch(() => undefined);
        // A refreshed token whose save failed lives only in memory: one last try before exiting.
        const lost = await tokens.settlePending(Math.max(drainMs, 2_000));
        if (lost.length > 0) logger.error({ grants: lost }, 'refreshed tokens could not be saved before stopping; these grants need `keyway connect`');
        await closeOpened();
      })();
      return stopping;
    },
  };
}

/** The audit writer audit.sink names: the hash-chained file (default), or this replica's chain in the store's database. */
async function openAuditLog(services: Services, env: NodeJS.ProcessEnv, metrics: KeywayMetrics, logger: Logger): Promise<AuditLog> {
  const { config, paths } = services;
  const replica = config.audit.replica ?? (config.store.backend === 'postgres' ? hostname() : undefined);
  const onBatch = (seconds: number, ok: boolean) => metrics.auditBatch(seconds, ok);
  const db = auditDatabaseOf(config, env);
  if (db !== null) return TableAuditWriter.open({ ...db, replica: replica ?? hostname(), headKey: services.auditHeadKey, onBatch });
  return AuditWriter.open({
    path: paths.audit,
    headPath: paths.auditHead,
    headKey: services.auditHeadKey,
    maxBytes: config.audit.max_bytes,
    keep: config.audit.keep,
    minRetentionMs: config.audit.min_retention,
    // Files past keep that min_retention keeps: someone should look (a flood of lines, or keep and
    // max_bytes too small for the traffic) before the disk fills.
    onRetention: logRetention(logger, config.audit.keep, config.audit.min_retention),
    // Rotation failing leaves one file growing: say so once when it starts and once when it ends.
    onRotationError: (err) =>
      err === null
        ? logger.info('audit rotation works again')
        : logger.warn({ code: (err as NodeJS.ErrnoException).code ?? 'error' }, 'audit rotation fails; lines are still written, to one growing file'),
    onBatch,
    replica,
  });
}

/**
 * Enters this process's listeners in the host's registry, so that other keyways refuse them as
 * destinations. A registry this process cannot trust or write is not a reason to stop: it warns.
 */
async function announceListeners(dir: string, proxy: AddressInfo, admin: AddressInfo | undefined, logger: Logger): Promise<Registration | undefined> {
  const entries: KeywayListener[] = [{ kind: 'proxy', host: proxy.address, port: proxy.port }];
  if (admin) entries.push({ kind: 'admin', host: admin.address, port: admin.port });
  try {
    return await registerListeners(dir, entries);
  } catch (err) {
    logger.warn(
      { err: { message: (err as Error).message } },
      "could not register this keyway's listeners; other keyways on this host will not refuse them as destinations",
    );
    return undefined;
  }
}

function isListenError(err: unknown): boolean {
  return ['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL'].includes((err as NodeJS.ErrnoException).code ?? '');
}

/** Listens, or fails with one line naming the address (and the keyway already there, if any). */
async function listenOn(server: Server, address: ListenAddress, key: string, runningFile: string): Promise<void> {
  server.listen(address.port, address.host);
  try {
    await once(server, 'listening');
  } catch (err) {
    throw isListenError(err) ? await listenFailure(err, key, address, runningFile) : err;
  }
}

/** Every store record but the usage ones, by id: what the grant and agent tables may be built from. */
function recordsBesideUsage(store: Services['store']): Array<[string, unknown]> {
  return store.entries<unknown>('').filter(([id]) => !id.startsWith(USAGE_PREFIX));
}

/**
 * Whether two listings hold the same records. By identity: both store backends keep the value of a
 * record that did not change (values are frozen and replaced whole), so this costs no deep compare.
 */
function sameRecords(a: Array<[string, unknown]>, b: Array<[string, unknown]>): boolean {
  return a.length === b.length && a.every(([id, value], i) => b[i]![0] === id && b[i]![1] === value);
}

/**
 * Last use per grant, kept in memory on the request path and written to the store every few
 * seconds at most: the request path does no disk I/O for it.
 */
class UsageRecorder {
  readonly #services: Services;
  // Epoch ms, formatted only when flushed: the request path does a Map set and nothing more.
  readonly #pending = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;

  constructor(services: Services) {
    this.#services = services;
    this.#timer = setInterval(() => void this.flush().catch(() => undefined), 10_000);
    this.#timer.unref();
  }

  touch(grantId: string): void {
    this.#pending.set(grantId, Date.now());
  }

  async flush(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending];
    this.#pending.clear();
    await this.#services.store.update((draft) => {
      for (const [id, at] of batch) draft.set(usageRecordId(id), { last_used_at: new Date(at).toISOString() } satisfies GrantUsage);
    });
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
