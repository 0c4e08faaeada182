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
// prom-client (with the OpenTelemetry API its default metrics load) is 83 modules, a tenth of a
// keyway's start, and every `keyway run --contain` starts a keyway. So it is loaded off the start:
// at the first scrape, or LOAD_AFTER_MS after this object is made, whichever comes first
// (prom-metrics.ts builds the registry then). Until it is loaded, the few figures observed
// directly (histograms, token and source counters) wait in #pending, in order, and are handed
// over at the load: a scrape shows the same as if prom-client had been there from the start.
// The wait is bounded in time, not count: the load starts at most LOAD_AFTER_MS after the start.
// The default set's GC and event-loop figures count from the load, LOAD_AFTER_MS at most later
// than before (docs/perf/startup.md).
//
// Labels: decision and code come from fixed tables; grant and agent are ids from the config or
// the store, bounded again by BoundedLabels; model names come from upstream answers, so ModelLabels
// admits only a model name's shape and bounds their number. No label ever holds a host, a path or a
// header value.

import type { Registry } from 'prom-client';
import type { AuditEvent, RetentionHold } from '../../audit/index.ts';
import type { TokenObserver, TokenRequestResult } from '../../credentials/issuing/token-store.ts';
import { BoundedLabels, ModelLabels } from './labels.ts';
import { ModelUsageCounts } from './model-usage.ts';
import type { PromMetrics, Tallies } from './prom-metrics.ts';
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

/** How long after the start prom-client is loaded where no scrape asked for it first: past a contained `true`, well within a first scrape interval. */
const LOAD_AFTER_MS = 2_000;

export class KeywayMetrics implements TokenObserver {
  readonly #grants = new BoundedLabels();
  readonly #agents = new BoundedLabels();
  readonly #tallies: Tallies = {
    requests: new Tally(),
    byGrant: new Tally(),
    leaks: new Tally(),
    policy: new Tally(),
    limited: new Tally(),
    approvals: new Tally(),
    modelUsage: new ModelUsageCounts(),
  };
  readonly #models = new ModelLabels();
  #sources: MetricSources | undefined;
  /** prom-client's metrics, once loaded. */
  #prom: PromMetrics | undefined;
  #loading: Promise<PromMetrics> | undefined;
  /** Observations made before the load, handed over in order at it; undefined once it is done or failed. */
  #pending: Array<(prom: PromMetrics) => void> | undefined = [];

  /**
   * `scraped: false`: this process has no /metrics for its whole life (admin.enabled: false is read
   * once, at the start, and a worker's primary asks it only for its own scrapes). prom-client is then
   * not loaded at all, and what only prom-client would hold (histograms, token and source counters)
   * is not kept: nothing could read it. The tallies still count, and a scrape() still loads it then.
   * Not loading it keeps prom-client, the OpenTelemetry API and the default metrics' GC and
   * event-loop observers (~5 MiB of RSS after s2) out of a sidecar that nobody scrapes.
   */
  constructor(options: { scraped?: boolean } = {}) {
    if (options.scraped === false) {
      this.#pending = undefined;
      return;
    }
    // unref: a keyway that stops sooner never loads it, and is not kept alive for it.
    setTimeout(() => void this.#load().catch(() => undefined), LOAD_AFTER_MS).unref();
  }

  /** Where the scrape-time figures come from; set once the parts exist. */
  watch(sources: MetricSources): void {
    this.#sources = sources;
  }

  /** One proxied request or tunnel, as its audit line says; `upstreamSeconds` when it reached an upstream. */
  request(event: AuditEvent, upstreamSeconds: number | undefined): void {
    const t = this.#tallies;
    t.requests.add(event.decision, event.code ?? NO_CODE);
    const grant = this.#grants.label(event.grant);
    const agent = this.#agents.label(event.agent);
    t.byGrant.add(grant, agent, event.decision);
    if (event.leak_redacted) t.leaks.add(grant, '', '', event.leak_redacted);
    if (event.limit !== undefined) t.limited.add(grant, agent, event.code === 'quota_exhausted' ? 'quota' : 'rate');
    if (event.approval !== undefined) t.approvals.add(grant, agent, event.approval.outcome);
    if (event.code === 'policy_denied') t.policy.add(grant, agent, 'denied');
    else if (event.code === 'lease_expired') t.policy.add(grant, agent, 'lease_expired');
    else if (event.policy === 'warn') t.policy.add(grant, agent, 'warned');
    if (event.usage !== undefined || event.cost_usd !== undefined) {
      const model = event.usage?.model ?? null;
      t.modelUsage.add(event, grant, agent, () => this.#models.label(model));
    }
    if (upstreamSeconds === undefined) return;
    // Per request: no closure once prom-client is there.
    if (this.#prom !== undefined) this.#prom.upstream.observe(upstreamSeconds);
    else if (this.#pending !== undefined) this.#pending.push((p) => p.upstream.observe(upstreamSeconds));
  }

  tokenRequest(grantId: string, seconds: number, result: TokenRequestResult): void {
    const grant = this.#grants.label(grantId);
    this.#observe((p) => {
      p.tokenRequests.inc({ grant, result });
      p.tokenSeconds.observe({ grant }, seconds);
    });
  }

  tokenRefreshed(grantId: string): void {
    const grant = this.#grants.label(grantId);
    this.#observe((p) => p.refreshes.inc({ grant }));
  }

  /** One fetch of a secret source ended (source-secrets.ts). */
  secretSourceFetch(source: string, ok: boolean): void {
    this.#observe((p) => {
      p.sourceFetches.inc({ source, outcome: ok ? 'ok' : 'error' });
      p.sourceUp.set({ source }, ok ? 1 : 0);
    });
  }

  /** One batch of audit lines appended (ok) or failed. */
  auditBatch(seconds: number, ok: boolean): void {
    this.#observe((p) => p.auditWrite.observe({ result: ok ? 'ok' : 'failed' }, seconds));
  }

  /** The text Prometheus reads, and its content type. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    const { registry } = await this.#load();
    return { contentType: registry.contentType, text: await registry.metrics() };
  }

  /** The registry (a primary of workers aggregates its own with theirs). */
  async registry(): Promise<Registry> {
    return (await this.#load()).registry;
  }

  #observe(apply: (prom: PromMetrics) => void): void {
    if (this.#prom !== undefined) apply(this.#prom);
    else this.#pending?.push(apply);
  }

  #load(): Promise<PromMetrics> {
    this.#loading ??= import('./prom-metrics.ts').then(
      ({ buildPromMetrics }) => {
        const prom = buildPromMetrics(this.#tallies, () => this.#sources);
        for (const apply of this.#pending ?? []) apply(prom);
        this.#pending = undefined;
        this.#prom = prom;
        return prom;
      },
      (err: unknown) => {
        // prom-client would not load (a broken install): nothing is kept waiting for it, and every scrape says why.
        this.#pending = undefined;
        throw err;
      },
    );
    return this.#loading;
  }
}
