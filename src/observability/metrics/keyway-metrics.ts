// Every metric keyway exposes at the admin listener's /metrics, defined in this one place.
//
// Cost on the request path: a request is counted once, when its audit line is committed
// (proxy/audit-event.ts), with Map lookups on values the line already holds (tally.ts) and one
// unlabelled histogram observation; the counts reach prom-client only when /metrics is scraped.
// Sizes and totals that other parts keep anyway (open connections, the certificate cache, the
// audit queue) are read at scrape time and cost the request path nothing.
//
// Beside keyway's own figures, prom-client's default process_* and nodejs_* metrics.
//
// Labels: decision and code come from fixed tables; grant and agent are ids from the config or
// the store, bounded again by BoundedLabels; model names come from upstream answers, so ModelLabels
// admits only a model name's shape and bounds their number. No label ever holds a host, a path or a
// header value.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditEvent, RetentionHold } from '../../audit/index.ts';
import type { TokenObserver, TokenRequestResult } from '../../credentials/issuing/token-store.ts';
import { BoundedLabels, ModelLabels } from './labels.ts';
import { ModelUsageCounts } from './model-usage.ts';
import { Tally } from './tally.ts';

/** Figures other parts keep, read when /metrics is scraped. */
export interface MetricSources {
  /** Client connections the proxy holds now. */
  openConnections(): number;
  certificates(): { leaves: number; contexts: number; hits: number; mints: number };
  /**
   * Lines waiting to reach the audit file, lines given up during a fault, and rotated files
   * audit.min_retention keeps past audit.keep (null: none).
   */
  audit(): { queued: number; dropped: number; held: RetentionHold | null };
  /** Approvals waiting for a person now, in the store (every process's). */
  approvalsPending(): number;
}

/** The one code an audit line holds, or this when it holds none (the request went through). */
const NO_CODE = 'none';

export class KeywayMetrics implements TokenObserver {
  readonly registry = new Registry();
  readonly #grants = new BoundedLabels();
  readonly #agents = new BoundedLabels();
  readonly #models = new ModelLabels();
  readonly #requests = new Tally(); // decision, code
  readonly #byGrant = new Tally(); // grant, agent, decision
  readonly #leaks = new Tally(); // grant
  readonly #policy = new Tally(); // grant, agent, outcome
  readonly #limited = new Tally(); // grant, agent, rate | quota
  readonly #approvals = new Tally(); // grant, agent, outcome
  readonly #modelUsage: ModelUsageCounts;
  readonly #upstream: Histogram;
  readonly #auditWrite: Histogram<'result'>;
  readonly #tokenSeconds: Histogram<'grant'>;
  readonly #tokenRequests: Counter<'grant' | 'result'>;
  readonly #refreshes: Counter<'grant'>;
  readonly #sourceFetches: Counter<'source' | 'outcome'>;
  readonly #sourceUp: Gauge<'source'>;
  #sources: MetricSources | undefined;

  constructor() {
    const registers = [this.registry];
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
      this.#requests,
    );
    tallied(
      'keyway_grant_requests_total',
      'Proxied requests by grant and agent (_none: no grant or no agent known).',
      ['grant', 'agent', 'decision'],
      this.#byGrant,
    );
    tallied('keyway_leak_redactions_total', 'Copies of an injected secret the response guard redacted, by grant.', ['grant'], this.#leaks);
    tallied(
      'keyway_policy_denials_total',
      'Requests the agent rules or leases refused (denied, lease_expired) or let through in warn mode (warned).',
      ['grant', 'agent', 'outcome'],
      this.#policy,
    );
    tallied(
      'keyway_limited_total',
      "Requests refused by an agent's or grant's limits: (rate: 429 rate_limited, per replica; quota: 429 quota_exhausted).",
      ['grant', 'agent', 'limit'],
      this.#limited,
    );
    tallied(
      'keyway_approval_requests_total',
      'Requests a rule sent to a person (approve: human), by what became of them: once and window (let through), required, denied, expired.',
      ['grant', 'agent', 'outcome'],
      this.#approvals,
    );
    // Model answers' tokens and dollars (issue 63): counters, so a primary of workers sums them.
    this.#modelUsage = new ModelUsageCounts(this.registry);
    this.#upstream = new Histogram({
      name: 'keyway_upstream_response_seconds',
      help: 'Time from sending a request upstream to its response head, for intercepted requests.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.#tokenRequests = new Counter({
      name: 'keyway_token_requests_total',
      help: 'Calls to a token endpoint by grant and result (ok, or the failure: invalid_grant, rejected, unreachable, timeout, ...).',
      labelNames: ['grant', 'result'],
      registers,
    });
    this.#tokenSeconds = new Histogram({
      name: 'keyway_token_request_seconds',
      help: 'Token endpoint latency by grant, failures included.',
      labelNames: ['grant'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.#refreshes = new Counter({
      name: 'keyway_token_refreshes_total',
      help: 'Access tokens refreshed and saved, by grant.',
      labelNames: ['grant'],
      registers,
    });
    // Secret sources (secret_sources:): their names come from the config, so the labels are bounded.
    this.#sourceFetches = new Counter({
      name: 'keyway_secret_source_fetches_total',
      help: 'Fetches of a secret source by source and outcome (ok, error).',
      labelNames: ['source', 'outcome'],
      registers,
    });
    this.#sourceUp = new Gauge({
      name: 'keyway_secret_source_up',
      help: 'Whether the last fetch of a secret source succeeded (1) or failed (0).',
      labelNames: ['source'],
      // Under proxy.workers: down if any worker's last fetch failed.
      aggregator: 'min',
      registers,
    });
    this.#auditWrite = new Histogram({
      name: 'keyway_audit_write_seconds',
      help: 'Time to append one batch of audit lines (lock, append, unlock), by result.',
      labelNames: ['result'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.#scraped();
    // prom-client's process_* and nodejs_* set (resident memory, heap spaces, open descriptors, CPU,
    // event-loop delay, GC): what an operator watches first, and what a memory question starts from.
    collectDefaultMetrics({ register: this.registry });
  }

  /** Where the scrape-time figures come from; set once the parts exist. */
  watch(sources: MetricSources): void {
    this.#sources = sources;
  }

  /** One proxied request or tunnel, as its audit line says; `upstreamSeconds` when it reached an upstream. */
  request(event: AuditEvent, upstreamSeconds: number | undefined): void {
    this.#requests.add(event.decision, event.code ?? NO_CODE);
    const grant = this.#grants.label(event.grant);
    const agent = this.#agents.label(event.agent);
    this.#byGrant.add(grant, agent, event.decision);
    if (event.leak_redacted) this.#leaks.add(grant, '', '', event.leak_redacted);
    if (event.limit !== undefined) this.#limited.add(grant, agent, event.code === 'quota_exhausted' ? 'quota' : 'rate');
    if (event.approval !== undefined) this.#approvals.add(grant, agent, event.approval.outcome);
    if (event.code === 'policy_denied') this.#policy.add(grant, agent, 'denied');
    else if (event.code === 'lease_expired') this.#policy.add(grant, agent, 'lease_expired');
    else if (event.policy === 'warn') this.#policy.add(grant, agent, 'warned');
    if (event.usage !== undefined || event.cost_usd !== undefined) {
      const model = event.usage?.model ?? null;
      this.#modelUsage.add(event, grant, agent, () => this.#models.label(model));
    }
    if (upstreamSeconds !== undefined) this.#upstream.observe(upstreamSeconds);
  }

  tokenRequest(grantId: string, seconds: number, result: TokenRequestResult): void {
    const grant = this.#grants.label(grantId);
    this.#tokenRequests.inc({ grant, result });
    this.#tokenSeconds.observe({ grant }, seconds);
  }

  tokenRefreshed(grantId: string): void {
    this.#refreshes.inc({ grant: this.#grants.label(grantId) });
  }

  /** One fetch of a secret source ended (source-secrets.ts). */
  secretSourceFetch(source: string, ok: boolean): void {
    this.#sourceFetches.inc({ source, outcome: ok ? 'ok' : 'error' });
    this.#sourceUp.set({ source }, ok ? 1 : 0);
  }

  /** One batch of audit lines appended (ok) or failed. */
  auditBatch(seconds: number, ok: boolean): void {
    this.#auditWrite.observe({ result: ok ? 'ok' : 'failed' }, seconds);
  }

  /** The text Prometheus reads, and its content type. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  /** Gauges and counters read from their sources at scrape time. */
  #scraped(): void {
    const registers = [this.registry];
    const sources = () => this.#sources;
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
}
