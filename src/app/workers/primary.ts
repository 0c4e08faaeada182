// keyway start with proxy.workers above 1: this process is the primary. It forks the workers
// (pool.ts), which serve the proxy's listeners side by side, and keeps what there must be one of:
// the admin listener (with /metrics summed over the workers and `keyway status` listing them),
// data/proxy.json, the request-rate buckets (shared-rates.ts), the spend ledger (shared-spend.ts),
// the audit file's writer (shared-audit.ts), reload and stop. Parts shared through the store
// (tokens and their refresh lock, quotas, approvals, leases) need nothing from it: the workers
// share them as any processes on one home do.
//
// Why processes on one port (SO_REUSEPORT) rather than the cluster module's round robin: the
// kernel hands each connection to a worker with no hop through the primary, so the primary's core
// stays free and a primary that is busy (a dashboard, a scrape) delays no connection. docs/perf
// has the measurement.
import type { AddressInfo } from 'node:net';
import type { ProxyActivity } from '../../admin/deps.ts';
import type { AdminServer } from '../../admin/server.ts';
import type { MinuteCount } from '../../observability/counting-audit.ts';
import { KeywayError, type KeywayErrorCode } from '../../errors/index.ts';
import { RateLimiter } from '../../policy/rate-limits.ts';
import { startAdmin } from '../admin-deps.ts';
import type { Closers } from '../closers.ts';
import { announceKeyway, answerDns } from '../listen.ts';
import type { ReloadOutcome } from '../live-config.ts';
import type { Parts } from '../parts.ts';
import { type RunningKeyway, stopKeyway, type WorkerActivity } from '../running.ts';
import { checkReusePort, checkPortFree } from './reuse-port.ts';
import { answerRates } from './shared-rates.ts';
import { answerSpendCheck, takeSpendAdd } from './shared-spend.ts';
import { takeRefusal } from './shared-refusals.ts';
import { AuditFromWorkers, takeWorkerAudit } from './shared-audit.ts';
import { AuditWriter } from '../../audit/index.ts';
import type { WorkerBound } from './messages.ts';
import { isReloadedOutcome, WorkerPool, WorkerStartError } from './pool.ts';

/** Starts `count` workers on the proxy's listeners, then the admin listener; resolves once all listen. */
export async function startPrimary(parts: Parts, closers: Closers, count: number): Promise<RunningKeyway> {
  const { options, services, live, logger } = parts;
  const { config, paths } = services;
  checkReusePort();
  const listen = options.listen ?? config.proxy.listen;
  const transparent = config.proxy.transparent;
  // SO_REUSEPORT lets a second group of sockets share a port whose holders also set it: a port
  // another keyway's workers hold must fail this start, not split its connections with ours.
  await checkPortFree(listen, 'proxy.listen', paths.runningProxy);
  if (transparent?.listen) await checkPortFree(transparent.listen, 'proxy.transparent.listen', paths.runningProxy);
  if (transparent?.http_listen) await checkPortFree(transparent.http_listen, 'proxy.transparent.http_listen', paths.runningProxy);
  // The agent's DNS is answered here, not by the workers: one answerer is plenty.
  if (transparent?.dns_listen) await answerDns(transparent.dns_listen, closers);

  const rates = new RateLimiter();
  // The audit file's one writer is this process's: the workers hand their lines here (shared-audit.ts).
  const auditWriter = parts.auditWriter.inner;
  const workersAudit = auditWriter instanceof AuditWriter ? new AuditFromWorkers(auditWriter) : undefined;
  let lastConnections = 0;
  const logFormat = options.logFormat ?? 'json';
  const pool = new WorkerPool({
    count,
    env: parts.env,
    logger,
    startFor: (index, bound) => ({
      index,
      home: options.home,
      configFile: options.configFile,
      listen: bound?.proxy ?? listen,
      transparent: { tls: bound?.transparent.tls ?? transparent?.listen, http: bound?.transparent.http ?? transparent?.http_listen },
      logFormat,
    }),
    config: () => live.config,
    policyTexts: () => live.policy.texts,
    onMessage: (message, reply, pid) => {
      if (message.t === 'rates') reply(answerRates(rates, message));
      else if (message.t === 'spend-add') takeSpendAdd(parts.spend, message, reply);
      else if (message.t === 'spend-check') answerSpendCheck(parts.spend, message, reply);
      else if (message.t === 'refusal') takeRefusal(parts.auditWriter, message);
      else if (message.t === 'audit') takeWorkerAudit(workersAudit, pid, message, reply);
    },
    onExit: (pid) => workersAudit?.workerGone(pid),
  });
  if (workersAudit !== undefined) {
    // A worker admits requests on the primary's word that its writer is healthy and has room: said
    // with every answer, and to all of them when it changes.
    workersAudit.watchHealth((message) => pool.tellAll(message));
    closers.add('audit health to workers', () => workersAudit.stop());
  }
  let bound: WorkerBound;
  try {
    bound = await pool.start();
  } catch (err) {
    pool.killAll();
    if (err instanceof WorkerStartError) throw new KeywayError((err.code ?? 'listen_failed') as KeywayErrorCode, err.message, { cause: err });
    throw err;
  }
  closers.add('workers', () => pool.stop(0));
  const proxyAddress: AddressInfo = { address: bound.proxy.host, port: bound.proxy.port, family: bound.proxy.host.includes(':') ? 'IPv6' : 'IPv4' };
  for (const port of [bound.proxy.port, bound.transparent.tls?.port, bound.transparent.http?.port]) if (port !== undefined) parts.ownPorts.add(port);

  // Each worker's last stats: /readyz reads them (it answers at once; a probe starts the next read).
  let lastStats = new Map<number, { connections: number; requests: number; audit: boolean } | undefined>();
  let statsAskedAt = 0;
  const activity = async (): Promise<ProxyActivity> => {
    statsAskedAt = Date.now();
    const answers = await pool.ask('stats');
    const stats = new Map<number, { connections: number; requests: number; audit: boolean } | undefined>();
    // The primary serves no proxied request itself; what it counted came from contained runs' keyways (its contain door).
    const sum = { ...parts.audit.elsewhere };
    const minutes: MinuteCount[][] = [parts.audit.recent.snapshot()];
    for (const { pid, value } of answers) {
      const a = value as WorkerActivity | undefined;
      if (a === undefined || typeof a.requests !== 'number') continue;
      stats.set(pid, { connections: a.connections, requests: a.requests, audit: a.auditHealthy });
      sum.requests += a.requests;
      sum.refused += a.refused;
      minutes.push(a.minutes);
    }
    lastStats = stats;
    const workers = pool.status(stats);
    lastConnections = workers.reduce((n, w) => n + (w.connections ?? 0), 0);
    return { pid: process.pid, started_at: parts.startedAt, ...sum, minutes: mergeMinutes(minutes), workers };
  };
  const workersReady = (): string | null => {
    if (Date.now() - statsAskedAt > 1_000) void activity().catch(() => undefined);
    const places = pool.status(lastStats);
    if (!places.some((w) => pool.isReady(w.index))) return 'no worker is serving the proxy (each is starting or restarting: see the log)';
    const failing = places.filter((w) => w.audit === 'failing').map((w) => w.index);
    if (failing.length > 0) return `worker ${failing.join(', ')} cannot write the audit log: its injected requests are refused`;
    return null;
  };
  // A worker's last metrics, kept for a scrape it does not answer in time: left out, its counters
  // would seem to go back (Prometheus reads that as a reset). A worker that died is left out.
  const lastMetrics = new Map<number, unknown[]>();
  const metrics = {
    async scrape() {
      const answers = await pool.ask('metrics');
      const alive = new Set(pool.pids());
      for (const pid of lastMetrics.keys()) if (!alive.has(pid)) lastMetrics.delete(pid);
      for (const { pid, value } of answers) if (Array.isArray(value)) lastMetrics.set(pid, value);
      // Loaded here, as the metrics themselves are (observability/metrics/keyway-metrics.ts): off the start.
      const [{ AggregatorRegistry }, own] = await Promise.all([import('prom-client'), parts.metrics.registry()]);
      const all = [await own.getMetricsAsJSON(), ...lastMetrics.values()];
      const registry = AggregatorRegistry.aggregate(all as Parameters<typeof AggregatorRegistry.aggregate>[0]);
      return { contentType: registry.contentType, text: await registry.metrics() };
    },
  };
  // The primary loads and audits a reload once; the workers take the config it loaded, quietly.
  // One that does not is replaced by a worker started on it (pool.ts): no two serve different rules.
  const reload = async (origin: Parameters<typeof live.reload>[0]): Promise<ReloadOutcome> => {
    const outcome = await live.reload(origin);
    if (outcome.reloaded) await pool.reload(isReloadedOutcome);
    return outcome;
  };

  let admin: AdminServer | undefined;
  const adminReload = (client: string, actor: string | null) =>
    reload({ method: 'POST', path: '/api/reload', host: admin?.address.address ?? '', port: admin?.address.port ?? 0, client, actor });
  if (config.admin.enabled) admin = await startAdmin(parts, proxyAddress, { activity, metrics, reload: adminReload, workers: workersReady });
  if (admin) {
    closers.add('admin listener', () => admin.close(0));
    parts.ownPorts.add(admin.address.port);
    pool.refusePort(admin.address.port);
  }
  logger.info({ proxy: `${proxyAddress.address}:${proxyAddress.port}`, admin: admin?.address.port ?? null, workers: count }, 'keyway is listening');
  const registration = await announceKeyway(parts, closers, proxyAddress, admin?.address, 'start');

  let stopping: Promise<void> | undefined;
  const toAddress = (a: { host: string; port: number } | undefined): AddressInfo | undefined =>
    a === undefined ? undefined : { address: a.host, port: a.port, family: a.host.includes(':') ? 'IPv6' : 'IPv4' };
  return {
    services,
    ca: parts.ca,
    proxyAddress,
    adminAddress: admin?.address,
    workerPids: () => pool.pids(),
    // The count the last `keyway status` read: the workers hold the connections.
    connectionCount: () => lastConnections,
    acceptRedirected: () => {
      throw new Error('a keyway with proxy.workers takes no redirected listener (keyway run --contain runs its own)');
    },
    auditContainStart: () => Promise.reject(new Error('a keyway with proxy.workers runs no contained command')),
    counts: () => ({ grants: live.grantCount, agents: live.tables.agents.list().length }),
    inventory: () => ({ grants: live.tables.router.list(), agents: live.tables.agents.list() }),
    reload: (signal = 'SIGHUP', quiet = false) =>
      reload({ method: null, path: null, host: proxyAddress.address, port: proxyAddress.port, client: signal, actor: signal, quiet }),
    transparentAddresses: { tls: toAddress(bound.transparent.tls), http: toAddress(bound.transparent.http) },
    activity: () => ({ connections: lastConnections, requests: 0, refused: 0, minutes: [], auditHealthy: parts.audit.healthy }),
    async metricsJson() {
      return (await (await parts.metrics.registry()).getMetricsAsJSON()) as unknown[];
    },
    refusePort: (port) => {
      parts.ownPorts.add(port);
      pool.refusePort(port);
    },
    stop(stopOptions = {}) {
      stopping ??= stopKeyway(parts, closers, registration, stopOptions.drainMs ?? 0, async (drainMs) => {
        await pool.stop(drainMs);
        await admin?.close(drainMs);
      });
      return stopping;
    },
  };
}

/** The workers' last hours, minute by minute, added together (each list is oldest first, one slot a minute). */
export function mergeMinutes(lists: readonly MinuteCount[][]): MinuteCount[] {
  const byMinute = new Map<string, MinuteCount>();
  for (const list of lists)
    for (const m of list) {
      const into = byMinute.get(m.minute);
      if (into === undefined) {
        byMinute.set(m.minute, { ...m, codes: { ...m.codes } });
        continue;
      }
      into.inject += m.inject;
      into.tunnel += m.tunnel;
      into.deny += m.deny;
      into.error += m.error;
      into.refreshed += m.refreshed;
      for (const [code, n] of Object.entries(m.codes)) into.codes[code] = (into.codes[code] ?? 0) + n;
    }
  return [...byMinute.values()].sort((a, b) => a.minute.localeCompare(b.minute));
}
