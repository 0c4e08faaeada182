// The prom-client side of keyway's metrics (keyway-metrics.ts): the registry and every metric in
// it, built once, when prom-client is loaded (a scrape, or a moment after the keyway started: see
// keyway-metrics.ts for why not at start). Counts kept in tallies and figures other parts keep are
// read at scrape time through collect(); the histograms and counters observed directly are
// returned for keyway-metrics.ts to feed.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { MetricSources } from './keyway-metrics.ts';
import type { ModelUsageCounts } from './model-usage.ts';
import type { Tally } from './tally.ts';

/** The counts the request path keeps in plain numbers, handed over at each scrape. */
export interface Tallies {
  readonly requests: Tally; // decision, code
  readonly byGrant: Tally; // grant, agent, decision
  readonly leaks: Tally; // grant
  readonly policy: Tally; // grant, agent, outcome
  readonly limited: Tally; // grant, agent, rate | quota
  readonly approvals: Tally; // grant, agent, outcome
  readonly modelUsage: ModelUsageCounts; // grant, agent, model: tokens by kind, and dollars
}

export interface PromMetrics {
  readonly registry: Registry;
  readonly upstream: Histogram;
  readonly auditWrite: Histogram<'result'>;
  readonly tokenSeconds: Histogram<'grant'>;
  readonly tokenRequests: Counter<'grant' | 'result'>;
  readonly refreshes: Counter<'grant'>;
  readonly sourceFetches: Counter<'source' | 'outcome'>;
  readonly sourceUp: Gauge<'source'>;
}

/** The registry, in the order /metrics lists it: tallied counters, observed metrics, scrape-time figures, prom-client's defaults. */
export function buildPromMetrics(tallies: Tallies, sources: () => MetricSources | undefined): PromMetrics {
  const registry = new Registry();
  const registers = [registry];
  const tallied = (name: string, help: string, labelNames: string[], tally: Tally) =>
    new Counter({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const [a, b, c, n] of tally.entries()) this.inc(Object.fromEntries(labelNames.map((label, i) => [label, [a, b, c][i]!])), n);
      },
    });
  tallied(
    'keyway_requests_total',
    'Proxied requests and tunnels, one per audit line, by decision and code (none: went through).',
    ['decision', 'code'],
    tallies.requests,
  );
  tallied(
    'keyway_grant_requests_total',
    'Proxied requests by grant and agent (_none: no grant or no agent known).',
    ['grant', 'agent', 'decision'],
    tallies.byGrant,
  );
  tallied('keyway_leak_redactions_total', 'Copies of an injected secret the response guard redacted, by grant.', ['grant'], tallies.leaks);
  tallied(
    'keyway_policy_denials_total',
    'Requests the agent rules or leases refused (denied, lease_expired) or let through in warn mode (warned).',
    ['grant', 'agent', 'outcome'],
    tallies.policy,
  );
  tallied(
    'keyway_limited_total',
    "Requests refused by an agent's or grant's limits: (rate: 429 rate_limited, per replica; quota: 429 quota_exhausted).",
    ['grant', 'agent', 'limit'],
    tallies.limited,
  );
  tallied(
    'keyway_approval_requests_total',
    'Requests a rule sent to a person (approve: human), by what became of them: once and window (let through), required, denied, expired.',
    ['grant', 'agent', 'outcome'],
    tallies.approvals,
  );
  // Model answers' tokens and dollars (issue 63): counters, so a primary of workers sums them.
  tallies.modelUsage.register(registry, Counter);
  const upstream = new Histogram({
    name: 'keyway_upstream_response_seconds',
    help: 'Time from sending a request upstream to its response head, for intercepted requests.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const tokenRequests = new Counter({
    name: 'keyway_token_requests_total',
    help: 'Calls to a token endpoint by grant and result (ok, or the failure: invalid_grant, rejected, unreachable, timeout, ...).',
    labelNames: ['grant', 'result'],
    registers,
  });
  const tokenSeconds = new Histogram({
    name: 'keyway_token_request_seconds',
    help: 'Token endpoint latency by grant, failures included.',
    labelNames: ['grant'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const refreshes = new Counter({
    name: 'keyway_token_refreshes_total',
    help: 'Access tokens refreshed and saved, by grant.',
    labelNames: ['grant'],
    registers,
  });
  // Secret sources (secret_sources:): their names come from the config, so the labels are bounded.
  const sourceFetches = new Counter({
    name: 'keyway_secret_source_fetches_total',
    help: 'Fetches of a secret source by source and outcome (ok, error).',
    labelNames: ['source', 'outcome'],
    registers,
  });
  const sourceUp = new Gauge({
    name: 'keyway_secret_source_up',
    help: 'Whether the last fetch of a secret source succeeded (1) or failed (0).',
    labelNames: ['source'],
    // Under proxy.workers: down if any worker's last fetch failed.
    aggregator: 'min',
    registers,
  });
  const auditWrite = new Histogram({
    name: 'keyway_audit_write_seconds',
    help: 'Time to append one batch of audit lines (lock, append, unlock), by result.',
    labelNames: ['result'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers,
  });
  scrapeTimeMetrics(registry, sources);
  // prom-client's process_* and nodejs_* set (resident memory, heap spaces, open descriptors, CPU,
  // event-loop delay, GC): what an operator watches first, and what a memory question starts from.
  collectDefaultMetrics({ register: registry });
  return { registry, upstream, auditWrite, tokenSeconds, tokenRequests, refreshes, sourceFetches, sourceUp };
}

/** Gauges and counters read from their sources at scrape time. */
function scrapeTimeMetrics(registry: Registry, sources: () => MetricSources | undefined): void {
  const registers = [registry];
  new Gauge({
    name: 'keyway_approvals_pending',
    // Every process reads the same store or files: a primary of workers keeps one reading, not their sum.
    aggregator: 'max',
    help: 'Approvals waiting for a person now (in the store: every process on it).',
    registers,
    collect() {
      this.set(sources()?.approvalsPending() ?? 0);
    },
  });
  new Gauge({
    name: 'keyway_open_connections',
    help: 'Client connections the proxy holds (CONNECTs, tunnels, kept-alive HTTP).',
    registers,
    collect() {
      this.set(sources()?.openConnections() ?? 0);
    },
  });
  new Gauge({
    name: 'keyway_certificate_cache_size',
    help: 'Intercepted hosts with a minted leaf kept (leaves) and with a TLS context built (contexts).',
    labelNames: ['tier'],
    registers,
    collect() {
      const certs = sources()?.certificates();
      this.set({ tier: 'leaves' }, certs?.leaves ?? 0);
      this.set({ tier: 'contexts' }, certs?.contexts ?? 0);
    },
  });
  const total = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  total('keyway_certificate_cache_hits_total', 'TLS handshakes served from a kept leaf, without minting.', () => sources()?.certificates().hits ?? 0);
  total('keyway_certificate_mints_total', 'Leaf certificates minted.', () => sources()?.certificates().mints ?? 0);
  total('keyway_audit_dropped_lines_total', 'Audit lines given up because too many were waiting during a fault.', () => sources()?.audit().dropped ?? 0);
  new Gauge({
    name: 'keyway_audit_queue_lines',
    help: 'Audit lines waiting to reach the file (queued, or kept through a fault).',
    registers,
    collect() {
      this.set(sources()?.audit().queued ?? 0);
    },
  });
  // Above 0: rotation would have deleted files written less than audit.min_retention ago (a flood
  // of lines, or keep x max_bytes too small); they are kept, and use disk, until they age.
  new Gauge({
    name: 'keyway_audit_retention_held_files',
    aggregator: 'max',
    help: 'Rotated audit files kept past audit.keep because they were written less than audit.min_retention ago.',
    registers,
    collect() {
      this.set(sources()?.audit().held?.files ?? 0);
    },
  });
  new Gauge({
    name: 'keyway_audit_retention_held_bytes',
    aggregator: 'max',
    help: 'Bytes in the rotated audit files kept past audit.keep by audit.min_retention.',
    registers,
    collect() {
      this.set(sources()?.audit().held?.bytes ?? 0);
    },
  });
}
