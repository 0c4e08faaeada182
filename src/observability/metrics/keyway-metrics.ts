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
// keyway's start (every `keyway run --contain` starts a keyway), and with the default metrics'
// observers ~3 MiB of RSS after s2 (docs/perf/breakdown.md). So it is loaded at the first scrape,
// never before: every figure keyway keeps is plain numbers until then (tally.ts, histogram.ts,
// observed.ts), and a keyway nobody scrapes never loads it. The default set's GC and event-loop
// figures count from that first scrape.
//
// Labels: decision and code come from fixed tables; grant and agent are ids from the config or
// the store, bounded again by BoundedLabels (delegated agents, which `run --delegate` mints per
// run, in a smaller set of their own, so they never crowd out the root agents' labels; a root agent
// is what keyway_root_agent_requests_total counts a whole tree under); model names come from upstream answers, so ModelLabels
// admits only a model name's shape and bounds their number. No label ever holds a host, a path or a
// header value.

import type { Registry } from 'prom-client';
import type { AuditEvent, RetentionHold } from '../../audit/index.ts';
import type { TokenObserver, TokenRequestResult } from '../../credentials/issuing/token-store.ts';
import { BoundedLabels, ModelLabels } from './labels.ts';
import { ModelUsageCounts } from './model-usage.ts';
import { newObserved } from './observed.ts';
import type { Tallies } from './prom-metrics.ts';
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

/** Distinct delegated agents labelled; past it a new one counts under OVERFLOW_LABEL (its root still by name). */
export const MAX_CHILD_LABELS = 200;

/** One audit.export target's figures (audit-export/exporter.ts), labelled by its place in the config, never its URL. */
export interface ExportFigures {
  format: string;
  behind: number;
  sent: number;
  failures: number;
  missed: number;
  /** When a batch was last delivered (ISO 8601), or null. */
  last_success: string | null;
}

/** The one code an audit line holds, or this when it holds none (the request went through). */
const NO_CODE = 'none';

export class KeywayMetrics implements TokenObserver {
  readonly #grants = new BoundedLabels();
  readonly #agents = new BoundedLabels();
  readonly #children = new BoundedLabels(MAX_CHILD_LABELS);
  readonly #tallies: Tallies = {
    requests: new Tally(),
    byGrant: new Tally(),
    byRoot: new Tally(),
    leaks: new Tally(),
    policy: new Tally(),
    limited: new Tally(),
    approvals: new Tally(),
    modelUsage: new ModelUsageCounts(),
    observed: newObserved(),
  };
  readonly #models = new ModelLabels();
  #sources: MetricSources | undefined;
  #exports: () => readonly ExportFigures[] = () => [];
  /** prom-client's registry, built at the first scrape. */
  #loading: Promise<Registry> | undefined;

  /** Where the scrape-time figures come from; set once the parts exist. */
  watch(sources: MetricSources): void {
    this.#sources = sources;
  }

  /** audit.export's targets, read at scrape time (set by the process that exports). */
  watchExport(figures: () => readonly ExportFigures[]): void {
    this.#exports = figures;
  }

  /** One proxied request or tunnel, as its audit line says; `upstreamSeconds` when it reached an upstream. */
  request(event: AuditEvent, upstreamSeconds: number | undefined): void {
    const t = this.#tallies;
    t.requests.add(event.decision, event.code ?? NO_CODE);
    const grant = this.#grants.label(event.grant);
    const agent = event.chain === undefined ? this.#agents.label(event.agent) : this.#children.label(event.agent);
    t.byGrant.add(grant, agent, event.decision);
    // A delegated agent's request counts under its root too; a root agent's under itself.
    t.byRoot.add(grant, event.chain === undefined ? agent : this.#agents.label(event.chain[0] ?? null), event.decision);
    if (event.leak_redacted) t.leaks.add(grant, '', '', event.leak_redacted);
    if (event.limit !== undefined) t.limited.add(grant, agent, event.code === 'quota_exhausted' ? 'quota' : 'rate');
    if (event.approval !== undefined) t.approvals.add(grant, agent, event.approval.outcome);
    if (event.code === 'policy_denied') t.policy.add(grant, agent, 'denied');
    else if (event.code === 'lease_expired') t.policy.add(grant, agent, 'lease_expired');
    else if (event.policy_mode === 'warn') t.policy.add(grant, agent, 'warned');
    if (event.usage !== undefined || event.cost_usd !== undefined) t.modelUsage.add(event, grant, agent, this.#models);
    if (upstreamSeconds !== undefined) t.observed.upstream.observe(upstreamSeconds);
  }

  tokenRequest(grantId: string, seconds: number, result: TokenRequestResult): void {
    const grant = this.#grants.label(grantId);
    const observed = this.#tallies.observed;
    observed.tokenRequests.add(grant, result);
    observed.tokenSeconds.observe(seconds, grant);
  }

  tokenRefreshed(grantId: string): void {
    this.#tallies.observed.refreshes.add(this.#grants.label(grantId));
  }

  /** One fetch of a secret source ended (source-secrets.ts). */
  secretSourceFetch(source: string, ok: boolean): void {
    const observed = this.#tallies.observed;
    observed.sourceFetches.add(source, ok ? 'ok' : 'error');
    observed.sourceUp.set(source, ok ? 1 : 0);
  }

  /** One batch of audit lines appended (ok) or failed. */
  auditBatch(seconds: number, ok: boolean): void {
    this.#tallies.observed.auditWrite.observe(seconds, ok ? 'ok' : 'failed');
  }

  /** The text Prometheus reads, and its content type. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    const registry = await this.#load();
    return { contentType: registry.contentType, text: await registry.metrics() };
  }

  /** The registry (a primary of workers aggregates its own with theirs). */
  async registry(): Promise<Registry> {
    return this.#load();
  }

  /** prom-client and the registry over keyway's figures, at the first scrape; a failed load (a broken install) is tried again at the next. */
  #load(): Promise<Registry> {
    this.#loading ??= import('./prom-metrics.ts').then(
      ({ buildPromMetrics }) =>
        buildPromMetrics(
          this.#tallies,
          () => this.#sources,
          () => this.#exports(),
        ),
      (err: unknown) => {
        this.#loading = undefined;
        throw err;
      },
    );
    return this.#loading;
  }
}
