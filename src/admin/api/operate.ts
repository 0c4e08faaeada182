// The operational routes: the two probes (open), the metrics, the running process's status, the
// config reload, and this API's own description.

import { listGrants } from '../../credentials/grant-listing.ts';
import { publishedDocument } from '../../credentials/types/index.ts';
import { AdminError } from '../../errors/index.ts';
import type { AdminDeps } from '../deps.ts';
import { errorResponse, jsonResponse, openApiDocument } from '../openapi.ts';
import { readinessAnswer, sendMetrics } from '../operate-routes.ts';
import type { Route } from '../router.ts';

const TAGS = ['operate'];

type PublishedBody = { mediaType: string; body: unknown };
/** Published documents, per grant table (a table is swapped whole when the config or store changes). */
const documents = new WeakMap<object, Map<string, PublishedBody | null>>();

/** `routes()` gives the whole table, for /api/openapi.json (it describes itself too). */
export function operateRoutes(deps: AdminDeps, routes: () => readonly Route[]): Route[] {
  return [
    {
      method: 'GET',
      path: '/healthz',
      open: true,
      doc: {
        operationId: 'healthz',
        summary: 'Is the process alive (liveness): 200 whenever it answers; `audit` says whether the log takes lines',
        description:
          'Liveness only. A full disk makes keyway refuse injected requests (503 audit_unavailable) and /readyz fail, and keyway recovers by itself when room returns; a restart would not free the disk, so /healthz stays 200.',
        tags: TAGS,
        responses: { '200': jsonResponse('Alive') },
      },
      handle: () => {
        const ok = deps.audit.healthy;
        return { status: 200, body: { ok: true, audit: ok ? 'ok' : 'unavailable' } };
      },
    },
    {
      method: 'GET',
      path: '/.well-known/{document}',
      open: true,
      doc: {
        operationId: 'wellKnownDocument',
        summary:
          "A public document a credential type publishes, made from its grants (http-message-signatures-directory: the http_signature grants' public keys, RFC 7638 thumbprints as kid)",
        tags: TAGS,
        responses: { '200': jsonResponse('The document'), '404': errorResponse('No credential type publishes a document of that name') },
      },
      handle: (ctx) => {
        const name = ctx.params['document'] ?? '';
        // Made from the grants the proxy signs with, once per table build (the route is open: no work per caller).
        const table = deps.grants();
        let made = documents.get(table)?.get(name);
        if (made === undefined) {
          made = publishedDocument(name, table.list()) ?? null;
          const forTable = documents.get(table) ?? new Map<string, PublishedBody | null>();
          // Bounded: a caller naming documents that do not exist grows nothing past this.
          if (forTable.size < 16) forTable.set(name, made);
          documents.set(table, forTable);
        }
        if (made === null) throw new AdminError('not_found', 'no credential type publishes a document of that name here');
        return { status: 200, body: made.body, headers: { 'content-type': made.mediaType, 'cache-control': 'max-age=300' } };
      },
    },
    {
      method: 'GET',
      path: '/readyz',
      open: true,
      doc: {
        operationId: 'readyz',
        summary: 'Should keyway be sent traffic: CA, store and audit log checked',
        tags: TAGS,
        responses: {
          '200': jsonResponse('Ready; `warnings` (when present) names what deserves a look without stopping traffic'),
          '503': jsonResponse('Not ready; `reason` names the first failing part'),
        },
      },
      handle: () => readinessAnswer(deps.readiness()),
    },
    {
      method: 'GET',
      path: '/metrics',
      doc: {
        operationId: 'metrics',
        summary: 'Prometheus metrics (text format)',
        tags: TAGS,
        responses: { '200': { description: 'The metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
      handle: async (ctx) => {
        await sendMetrics(ctx.res, deps.metrics);
        return { streamed: true, status: 200 };
      },
    },
    {
      method: 'GET',
      path: '/api/status',
      doc: {
        operationId: 'status',
        summary: 'The running process: pid, uptime, counts, audit health, audit.export targets (what `keyway status` shows)',
        tags: TAGS,
        responses: { '200': jsonResponse('The status') },
      },
      handle: async () => ({ status: 200, body: await statusOf(deps) }),
    },
    {
      method: 'POST',
      path: '/api/reload',
      auditsItself: true,
      doc: {
        operationId: 'reload',
        summary: 'Re-read the config file, as SIGHUP does; a bad config is refused and the running one stays',
        tags: TAGS,
        responses: {
          '200': jsonResponse('Reloaded: `changed` and `needs_restart` list the keys'),
          '422': errorResponse('The config file is invalid; nothing changed'),
        },
      },
      handle: async (ctx) => {
        // 422: the request was fine, the config file it points at is not (the running config stays).
        const outcome = await deps.reload(ctx.client, ctx.actor);
        return { status: outcome.reloaded ? 200 : 422, body: outcome };
      },
    },
    {
      method: 'GET',
      path: '/api/openapi.json',
      doc: {
        operationId: 'openapi',
        summary: 'This document',
        tags: TAGS,
        responses: { '200': jsonResponse('The OpenAPI 3.1 document') },
      },
      handle: async () => ({ status: 200, body: await openApiDocument(routes()) }),
    },
  ];
}

/** For `keyway status`: counts and states, never a name of a secret or a value. */
async function statusOf(deps: AdminDeps): Promise<Record<string, unknown>> {
  const activity = await deps.activity();
  const workersFailing = activity.workers?.some((w) => w.audit === 'failing') === true;
  return {
    service: 'keyway',
    pid: activity.pid,
    started_at: activity.started_at,
    uptime_s: Math.max(0, Math.round((Date.now() - Date.parse(activity.started_at)) / 1000)),
    grants: listGrants(deps.services).length,
    agents: deps.agents().list().length,
    requests: activity.requests,
    refused: activity.refused,
    audit: deps.audit.healthy && !workersFailing ? 'ok' : 'failing',
    ...(activity.workers === undefined ? {} : { workers: activity.workers }),
    ...(deps.exports === undefined ? {} : { audit_export: deps.exports() }),
  };
}
