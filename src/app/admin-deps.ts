// The admin API's dependencies, built once from start's parts (parts.ts): the same audit writer,
// tables, token manager and token-endpoint client the proxy uses, so a refresh asked for over the
// API joins the proxy's single flight and a reload swaps what both read.
import type { AddressInfo } from 'node:net';
import type { AdminDeps } from '../admin/deps.ts';
import type { readinessOf } from '../admin/readiness.ts';
import { exportViews, exportWarning } from '../audit-export/status-view.ts';
import type { AdminServer } from '../admin/server.ts';
import { proxyUrlFor, type ListenAddress } from '../config/index.ts';
import { asListenFailure } from './listen.ts';
import type { Parts } from './parts.ts';

/** Where the admin listener is asked to listen and where it did (its port may be 0 in the config). */
interface AdminPlace {
  listen: ListenAddress;
  bound: () => AddressInfo | undefined;
  proxy: AddressInfo;
}

export function adminDeps(parts: Parts, place: AdminPlace, readiness: typeof readinessOf): Omit<AdminDeps, 'closing'> {
  const { services, ca, audit, auditWriter, live, metrics, env, tokens, renewing, tokenEndpoints } = parts;
  const { config, store } = services;
  return {
    services,
    agents: () => live.tables.agents,
    grants: () => live.tables.router,
    audit,
    adminAudit: auditWriter,
    activity: () => ({ pid: process.pid, started_at: parts.startedAt, requests: audit.requests, refused: audit.refused, minutes: audit.recent.snapshot() }),
    reload: (client, actor) =>
      live.reload({ method: 'POST', path: '/api/reload', host: place.bound()?.address ?? place.listen.host, port: place.bound()?.port ?? 0, client, actor }),
    readiness: () =>
      readiness({
        ca,
        store,
        spend: parts.spend,
        audit,
        retention: () => auditWriter.retentionHold ?? null,
        minRetentionMs: config.audit.min_retention,
        rotation: () => auditWriter.rotationError ?? null,
        exportWarning: (now) => (parts.auditExport === undefined ? null : exportWarning(exportViews(parts.auditExport.status()), now)),
      }),
    ...(parts.auditExport === undefined ? {} : { exports: () => exportViews(parts.auditExport!.status()) }),
    metrics,
    env,
    tokens: { tokens, renewing, minted: parts.minted, dispatcher: tokenEndpoints.dispatcher },
    approvals: parts.approvals,
    slackInteractivity: () => parts.slack?.interactivity,
    proxyUrl: (credentials) => proxyUrlFor({ host: place.proxy.address, port: place.proxy.port }, credentials),
    oauth: { config: () => live.config, env, dispatcher: tokenEndpoints.dispatcher },
  };
}

/**
 * What a primary of workers (proxy.workers) answers itself: its workers' figures, a reload that
 * reaches them, and their part of /readyz (workers: beside the primary's own checks).
 */
export type AdminOverrides = Partial<Pick<AdminDeps, 'activity' | 'metrics' | 'reload'>> & { workers?: () => string | null };

/** Starts the admin listener on admin.listen (or the test's override), or fails naming the address. */
export async function startAdmin(parts: Parts, proxy: AddressInfo, overrides: AdminOverrides = {}): Promise<AdminServer> {
  const { options, services } = parts;
  const listen = options.adminListen ?? services.config.admin.listen;
  // Loaded only when there is an admin listener: its modules (API, dashboard, OAuth connect)
  // are ~0.5 MiB of heap and ~1 MiB of RSS a proxy without one never needs.
  const [{ startAdminServer }, { readinessOf }] = await Promise.all([import('../admin/server.ts'), import('../admin/readiness.ts')]);
  let admin: AdminServer | undefined;
  const { workers, ...replaced } = overrides;
  const deps = adminDeps(parts, { listen, bound: () => admin?.address, proxy }, readinessOf);
  const readiness = workers === undefined ? deps.readiness : () => ({ ...deps.readiness(), workers: workers() });
  try {
    admin = await startAdminServer({ ...deps, ...replaced, readiness, listen });
  } catch (err) {
    throw await asListenFailure(err, 'admin.listen', listen, services.paths.runningProxy);
  }
  return admin;
}
