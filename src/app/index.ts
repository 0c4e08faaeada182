// The composition root: builds every part once from the config (parts.ts), gives the proxy its
// runtime (proxy-runtime.ts) and the admin API its dependencies (admin-deps.ts), listens, and
// hands back the running handle (running.ts). A reload is live-config.ts's.
import { useIsoTimeForDates } from '../iso-time.ts';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { hostname, userInfo } from 'node:os';
import { resolve } from 'node:path';
import { createAppLogger } from '../log/logger.ts';
import { adminEvent } from '../audit/admin-event.ts';
import { loadConfigIsolated, loadedTextHash } from '../config/load-isolated.ts';
import { storedListing } from '../credentials/stored-listing.ts';
import { keywayVersion } from '../version.ts';
import { deepFreeze } from '../deep-freeze.ts';
import type { Config } from '../config/index.ts';
import { secretVariables } from '../config/index.ts';
import { RateLimiter } from '../policy/rate-limits.ts';
import { createProxyServer } from '../proxy/driver/server.ts';
import { containDoorServer } from './contain-door.ts';
import { takeRefusal } from './workers/shared-refusals.ts';
import { openServices, type Services } from '../open-home.ts';
import { loadOrCreateCa, writeBundleInChild, type BundleWriter, type CertificateAuthority } from '../tls/index.ts';
import { startAdmin } from './admin-deps.ts';
import { Closers } from './closers.ts';
import { announceKeyway, answerDns, listenOn, openContainDoor } from './listen.ts';
import type { StartOptions } from './options.ts';
import { buildParts, type Parts } from './parts.ts';
import { proxyRuntime } from './proxy-runtime.ts';
import { captureOwners, dropOrphanedCaptures } from '../capture/store/records.ts';
import { runningKeyway, type Listening, type RunningKeyway } from './running.ts';
import { startPrimary } from './workers/primary.ts';
import { workerCount } from './workers/count.ts';
import { startBufferReclaim } from '../process/buffer-reclaim.ts';

export type { StartOptions } from './options.ts';
export type { RunningKeyway } from './running.ts';

/**
 * Makes what a first start needs: the CA, the master key, the store. Returns the opened services.
 * `writeBundle`: how the CA bundle is written, if it must be (in this process by default; the
 * proxy, which runs for days, has a child do it: Node would keep the system roots it read).
 */
export async function initialise(
  options: Pick<StartOptions, 'home' | 'configFile' | 'config' | 'env' | 'worker' | 'freshStore'>,
  writeBundle?: BundleWriter,
): Promise<{ services: Services; ca: CertificateAuthority }> {
  const { worker, config } = options;
  // A config given in is passed through JSON as loadConfigIsolated's answer is: the same shape (no keys of undefined values).
  const given = config === undefined ? undefined : () => deepFreeze(JSON.parse(JSON.stringify(config)) as Config);
  const loadConfig = worker !== undefined ? () => worker.config() : (given ?? loadConfigIsolated);
  const services = await openServices({
    home: options.home,
    configFile: options.configFile,
    env: options.env,
    loadConfig,
    freshStore: options.freshStore === true && worker === undefined,
  });
  const ca = await loadOrCreateCa(services.paths.certsDir, writeBundle);
  return { services, ca };
}

/** Builds every part from the config, starts listening, reloads on change. */
export async function startKeyway(options: StartOptions): Promise<RunningKeyway> {
  // Before any time is written: every Date's ISO text without V8's date cache (iso-time.ts).
  useIsoTimeForDates();
  const env = options.env ?? process.env;
  const logger = options.logger ?? createAppLogger();
  const startedAt = new Date().toISOString();
  const { services, ca } = await initialise(options, writeBundleInChild);
  const { store } = services;

  // Start is all or nothing: any failure (a port in use above all) closes every part opened so
  // far, newest first, before the error goes up. Nothing is announced in data/proxy.json until
  // every listener is up.
  const closers = new Closers();
  closers.add('store', () => (store.end ? store.end() : store.close()));
  try {
    const parts = await buildParts({ options, env, logger, services, ca, startedAt }, closers);
    if (services.freshOverHistory) await auditFreshStore(parts, services.freshOverHistory);
    // The policy loaded (with Cedar files), before any request is judged under it; a worker's primary writes it once for all.
    if (options.worker === undefined) await parts.live.auditPolicyLoad();
    const workers = options.workers === true && options.worker === undefined ? workerCount(services.config.proxy.workers) : 1;
    if (workers > 1) return await startPrimary(parts, closers, workers);
    closers.add('buffer reclaim', startBufferReclaim());
    return runningKeyway(parts, await listen(parts, closers), closers);
  } catch (err) {
    await closers.closeAll();
    throw err;
  }
}

/**
 * `--fresh-store` made a new store over a home with history: said in the log and in the audit chain
 * (decision admin, action store.fresh), naming what showed the history, before any request is served.
 */
async function auditFreshStore(parts: Parts, evidence: readonly string[]): Promise<void> {
  const message = `a new empty store was made by --fresh-store although this home was used before (${evidence.join(', ')})`;
  parts.logger.warn({ evidence }, message);
  await parts.audit.write(adminEvent({ host: hostname(), client: 'cli', action: 'store.fresh', actor: startedBy(), message }));
}

/** Who ran this start: the OS user at this host (the CLI's actor, without KEYWAY_ACTOR: a start is not a wrapper's). */
function startedBy(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}@${hostname()}`;
  }
}

/** The contain door's listener (contain-door.ts): this keyway's env: secrets and rate buckets for keyway run --contain's keyway. */
function doorServer(parts: Parts, rates: RateLimiter): NetServer {
  return containDoorServer({
    rates,
    audit: (event) => parts.audit.write(event),
    refusal: (event) => takeRefusal(parts.auditWriter, { t: 'refusal', event }),
    tally: (counts) => {
      for (const count of counts) parts.audit.countElsewhere(count);
    },
    firstByteMs: () => parts.live.config.proxy.timeouts.first_byte,
    async client(question) {
      // Only a config from the very text the asker read: one edited since (not reloaded), another
      // home or --config, or a reload refused, and the asker loads its own, as it would have.
      const config = parts.live.config;
      const sha256 = loadedTextHash(config);
      if (sha256 === undefined || sha256 !== question.sha256 || config.file !== question.path || resolve(config.home) !== resolve(question.home))
        return { match: false };
      // A grant or agent added a moment ago is in the answer: one stat, the file re-read if it changed.
      await parts.services.store.catchUp();
      return { match: true, version: keywayVersion(), config, stored: storedListing(parts.services.store) };
    },
    secrets(names) {
      const config = parts.live.config;
      const handed = secretVariables(config);
      const values: Record<string, string> = {};
      for (const name of names) {
        // The config's env: secrets and the master key (a keyway of this home cannot open the store
        // without it); never the admin token or another KEYWAY_* variable.
        const mayHand = name === 'KEYWAY_MASTER_KEY' || (!name.startsWith('KEYWAY_') && handed.has(name));
        const value = parts.env[name];
        if (mayHand && value !== undefined) values[name] = value;
      }
      return values;
    },
  });
}

/** Binds the proxy, then the admin listener if there is one; only then says where they are. */
async function listen(parts: Parts, closers: Closers): Promise<Listening> {
  const { options, services, live, metrics, auditWriter, contexts, ownPorts, logger } = parts;
  const { config, paths } = services;
  const { worker } = options;
  const reusePort = worker !== undefined;
  let bound: AddressInfo | undefined;
  // The door's answers name the proxy's address, known once it listens.
  const runtime = proxyRuntime(parts, () => bound);
  const proxy = createProxyServer(runtime);
  closers.add('proxy listener', () => proxy.close(0));
  await listenOn(proxy.listener, options.listen ?? config.proxy.listen, 'proxy.listen', paths.runningProxy, reusePort);
  const proxyAddress = proxy.listener.address() as AddressInfo;
  bound = proxyAddress;
  // Redirected connections (proxy.transparent): keyway's own ports, never destinations.
  const redirected = config.proxy.transparent;
  const tlsListen = worker?.transparent.tls ?? redirected?.listen;
  if (proxy.transparent.tls && tlsListen) {
    await listenOn(proxy.transparent.tls, tlsListen, 'proxy.transparent.listen', paths.runningProxy, reusePort);
    ownPorts.add((proxy.transparent.tls.address() as AddressInfo).port);
  }
  const httpListen = worker?.transparent.http ?? redirected?.http_listen;
  if (proxy.transparent.http && httpListen) {
    await listenOn(proxy.transparent.http, httpListen, 'proxy.transparent.http_listen', paths.runningProxy, reusePort);
    ownPorts.add((proxy.transparent.http.address() as AddressInfo).port);
  }
  // The agent's DNS (proxy.transparent.dns_listen): one answerer, in the primary or the only process.
  if (worker === undefined && redirected?.dns_listen) await answerDns(redirected.dns_listen, closers);
  live.onApply((next) => proxy.retime(next.proxy.timeouts));
  // Captured logins of a grant or agent the config no longer has go (at start, and after a reload):
  // an agent removed from the config is revoked, and a later one of its name starts afresh.
  if (worker === undefined) {
    const dropOrphans = () =>
      void dropOrphanedCaptures(services.store, captureOwners(live.tables)).catch((err: unknown) =>
        logger.warn({ err: { message: (err as Error).message } }, 'captured logins of removed grants or agents could not be dropped'),
      );
    dropOrphans();
    live.onApply(dropOrphans);
  }
  ownPorts.add(proxyAddress.port);
  metrics.watch({
    openConnections: () => proxy.connectionCount(),
    certificates: () => contexts.stats,
    audit: () => ({ queued: auditWriter.pendingLines, dropped: auditWriter.droppedLines, held: auditWriter.retentionHold ?? null }),
    approvalsPending: () => parts.approvals.pendingCount(),
  });

  // A worker's primary has the one admin listener.
  const admin = config.admin.enabled && worker === undefined ? await startAdmin(parts, proxyAddress) : undefined;
  if (admin) {
    closers.add('admin listener', () => admin.close(0));
    ownPorts.add(admin.address.port);
  }
  logger.info({ proxy: `${proxyAddress.address}:${proxyAddress.port}`, admin: admin?.address.port ?? null }, 'keyway is listening');
  // The contain door: a `keyway start` (not a worker, not keyway run --contain's own) takes its contained commands' connections.
  const doorWanted = worker === undefined && options.announce !== 'contain' && options.announce !== false;
  const door =
    doorWanted && runtime.rates instanceof RateLimiter
      ? await openContainDoor(doorServer(parts, runtime.rates), paths.runningProxy, closers, logger)
      : undefined;
  const registration = await announceKeyway(parts, closers, proxyAddress, admin?.address, options.announce === 'contain' ? 'contain' : 'start', door);
  return { proxy, proxyAddress, admin, registration };
}
