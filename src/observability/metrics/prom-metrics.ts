// The prom-client side of keyway's metrics (keyway-metrics.ts): the registry and every metric in
// it, built once, when prom-client is loaded at the first scrape (keyway-metrics.ts says why not
// before). Every figure is keyway's own until then: counts in tallies, histograms in plain numbers
// (histogram.ts), figures other parts keep; here they are read at each scrape, through collect()
// or the histograms' metric objects.

import { Counter, collectDefaultMetrics, Gauge, type Metric, Registry } from 'prom-client';
import type { ExportFigures, MetricSources } from './keyway-metrics.ts';
import type { ModelUsageCounts } from './model-usage.ts';
import type { Observed } from './observed.ts';
import type { Tally } from './tally.ts';

/** The counts the request path keeps in plain numbers, handed over at each scrape. */
export interface Tallies {
  readonly requests: Tally; // decision, code
  readonly byGrant: Tally; // grant, agent, decision
  readonly byRoot: Tally; // grant, root agent, decision
  readonly leaks: Tally; // grant
  readonly policy: Tally; // grant, agent, outcome
  readonly limited: Tally; // grant, agent, rate | quota
  readonly approvals: Tally; // grant, agent, outcome
  readonly modelUsage: ModelUsageCounts; // grant, agent, model: tokens by kind, and dollars
  readonly observed: Observed;
}

/** The registry, in the order /metrics lists it: tallied counters, observed metrics, scrape-time figures, prom-client's defaults. */
export function buildPromMetrics(tallies: Tallies, sources: () => MetricSources | undefined, exports: () => readonly ExportFigures[] = () => []): Registry {
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
  // What keyway observes as it happens, in plain numbers since the start (observed.ts).
  const observed = tallies.observed;
  registry.registerMetric(observed.upstream.metric() as unknown as Metric);
  tallied(
    'keyway_token_requests_total',
    'Calls to a token endpoint by grant and result (ok, or the failure: invalid_grant, rejected, unreachable, timeout, ...).',
    ['grant', 'result'],
    observed.tokenRequests,
  );
  registry.registerMetric(observed.tokenSeconds.metric() as unknown as Metric);
  tallied('keyway_token_refreshes_total', 'Access tokens refreshed and saved, by grant.', ['grant'], observed.refreshes);
  // Secret sources (secret_sources:): their names come from the config, so the labels are bounded.
  tallied('keyway_secret_source_fetches_total', 'Fetches of a secret source by source and outcome (ok, error).', ['source', 'outcome'], observed.sourceFetches);
  new Gauge({
    name: 'keyway_secret_source_up',
    help: 'Whether the last fetch of a secret source succeeded (1) or failed (0).',
    labelNames: ['source'],
    // Under proxy.workers: down if any worker's last fetch failed.
    aggregator: 'min',
    registers,
    collect() {
      this.reset();
      for (const [source, up] of observed.sourceUp) this.set({ source }, up);
    },
  });
  registry.registerMetric(observed.auditWrite.metric() as unknown as Metric);
  tallied(
    'keyway_root_agent_requests_total',
    "Proxied requests by grant and the root of the agent's delegation chain (the agent itself when it is no child), by decision.",
    ['grant', 'root_agent', 'decision'],
    tallies.byRoot,
  );
  scrapeTimeMetrics(registry, sources);
  exportMetrics(registry, exports);
  // prom-client's process_* and nodejs_* set (resident memory, heap spaces, open descriptors, CPU,
  // event-loop delay, GC): what an operator watches first, and what a memory question starts from.
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * audit.export (audit-export/): per target, labelled `audit.export[N]` and its format (never its URL,
 * which names a host): lines in the log not yet sent, and the counts since start.
 */
function exportMetrics(registry: Registry, exports: () => readonly ExportFigures[]): void {
  const registers = [registry];
  const figure = (name: string, help: string, read: (f: ExportFigures) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['target', 'format'],
      registers,
      collect() {
        this.reset();
        for (const [i, f] of exports().entries()) this.set({ target: `audit.export[${i}]`, format: f.format }, read(f));
      },
    });
  figure('keyway_audit_export_behind_lines', 'Audit lines in the log not yet given to an audit.export target (a receiver down: its backlog).', (f) => f.behind);
  figure('keyway_audit_export_sent_lines', 'Audit lines given to an audit.export target since start.', (f) => f.sent);
  figure('keyway_audit_export_failures', 'Failed sends to an audit.export target since start (each retried).', (f) => f.failures);
  // An alert on lag in time: `time() - keyway_audit_export_last_success_seconds > 600` (0: none since start).
  figure('keyway_audit_export_last_success_seconds', 'When a batch was last delivered to an audit.export target (Unix seconds; 0: none since start).', (f) =>
    f.last_success === null ? 0 : Math.floor(Date.parse(f.last_success) / 1000),
  );
  figure('keyway_audit_export_missed_lines', 'Audit lines gone from the log (pruned by rotation) before an audit.export target got them.', (f) => f.missed);
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
