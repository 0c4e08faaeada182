// What start builds once, before anything listens. The proxy's runtime (proxy-runtime.ts) and the
// admin's dependencies (admin-deps.ts) are both read from these parts, so the two share one audit
// writer, one set of tables and one token manager, and neither builds its own.
import { loadPolicy } from '../policy/cedar/load.ts';
import type { Logger } from 'pino';
import type { RefusalBudget } from '../audit/index.ts';
import { resolveFromHome } from '../config/index.ts';
import { readSecretRef } from '../config/secret-ref.ts';
import { loadConfigIsolated } from '../config/load-isolated.ts';
import { CountingAudit } from '../observability/counting-audit.ts';
import { Renewer } from '../credentials/issuing/renewer.ts';
import { MintedTokens } from '../credentials/issuing/minted-tokens.ts';
import type { RenewContext } from '../credentials/types/index.ts';
import { tokenManagerFor } from '../credentials/providers/config-tokens.ts';
import type { TokenManager } from '../credentials/issuing/oauth-tokens.ts';
import { ListenerRegistry, listenersDir } from '../egress/listener-registry.ts';
import { createUpstream, trustStore, type Upstream } from '../egress/upstream.ts';
import { egressSettings } from '../egress/egress-settings.ts';
import { KeywayMetrics } from '../observability/metrics/index.ts';
import { startTelemetry, type DecisionTelemetry } from '../observability/otlp.ts';
import type { Services } from '../open-home.ts';
import { LeafMinter, SecureContextCache, type CertificateAuthority } from '../tls/index.ts';
import { openAudit } from './audit-log.ts';
import type { Closers } from './closers.ts';
import { LiveConfig } from './live-config.ts';
import type { Config } from '../config/index.ts';
import type { StartOptions } from './options.ts';
import { watchStore } from './store-watch.ts';
import { UsageRecorder } from './usage-recorder.ts';
import { QuotaLedger } from '../quotas/ledger.ts';
import { SpendLedger, type SpendStore } from '../spend/ledger/ledger.ts';
import { SpendJournal } from '../spend/ledger/journal.ts';
import type { BudgetConfig } from '../config/spend.ts';
import type { SpendLedgerApi } from '../spend/core/ledger.ts';
import { hostname } from 'node:os';
import { ApprovalDesk } from '../approvals/desk.ts';
import { approvalNotifier, notifyPoster } from '../approvals/notify.ts';
import type { SlackApprovals } from '../approvals/slack/index.ts';
import { spendPart } from './spend-part.ts';
import { budgetsInForce } from '../delegation/stored-budget.ts';
import type { AuditExport } from '../audit-export/index.ts';
import { keywayVersion } from '../version.ts';
import type { Anomalies, Spending } from '../proxy/stages/views.ts';
import { AnomalyBook } from '../anomaly/book/book.ts';

/** What start has in hand before it builds: the options, the opened services and the CA. */
export interface StartContext {
  readonly options: StartOptions;
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  readonly services: Services;
  readonly ca: CertificateAuthority;
  /** When the process began starting (ISO 8601): `keyway status` counts uptime from it. */
  readonly startedAt: string;
}

export interface Parts extends StartContext {
  readonly metrics: KeywayMetrics;
  /** telemetry.otlp's exporters, when set. */
  readonly telemetry: DecisionTelemetry | undefined;
  /** The audit writer itself: admin and reload lines go here, not counted as proxied requests. */
  readonly auditWriter: RefusalBudget;
  /** The proxied requests' sink, counting them for `keyway status` and the dashboard. */
  readonly audit: CountingAudit;
  readonly contexts: SecureContextCache;
  /** The config in force and the tables built from it: a store change rebuilds the tables, a reload everything. */
  readonly live: LiveConfig;
  /** Agents' destinations, each checked against the egress policy after resolution. */
  readonly upstream: Upstream;
  /** Token endpoints, which only the user configures: not checked (a local authorization server is legitimate). */
  readonly tokenEndpoints: Upstream;
  readonly tokens: TokenManager;
  /** What a type that renews a credential from its key (aws_sigv4's assume_role) renews with: the one Renewer, the store, the token-endpoint client. */
  readonly renewing: RenewContext;
  /** Tokens minted from a grant's key (google_service_account, github_app). */
  readonly minted: MintedTokens;
  readonly usage: UsageRecorder;
  /** Quotas per UTC day (config limits.quota), counted in the store. */
  readonly quotas: QuotaLedger;
  /** Model spend against the config's budgets: this process's ledger on the store, or under proxy.workers the primary's (over IPC). */
  readonly spend: SpendLedgerApi;
  /** What the proxy asks of spend (proxy/stages/views.ts Spending): the ledger, priced and budgeted by the live config. */
  readonly spending: Spending['spend'];
  /** Requests rules send to a person (approve: human), shared with the admin API through the store. */
  readonly approvals: ApprovalDesk;
  /** approvals.slack, when set (and this process owns the admin listener). */
  readonly slack: SlackApprovals | undefined;
  /** The agents' histories (config anomaly:), in the store; alerts told through approvals.notify. */
  readonly anomaly: Anomalies['anomaly'];
  /** audit.export: the audit file's lines sent on to SIEMs (the only process, or a primary of workers; none in a worker). */
  readonly auditExport: AuditExport | undefined;
  /** The proxy never connects to its own listeners (a loop): filled in as each one binds. */
  readonly ownPorts: Set<number>;
  /** Nor to any other keyway's on this host (another home's, a `keyway fetch`'s): the shared registry. */
  readonly listeners: ListenerRegistry;
  readonly registryDir: string;
}

/** Builds every part once; each that must be closed is added to `closers` as it opens. */
export async function buildParts(context: StartContext, closers: Closers): Promise<Parts> {
  const { options, env, logger, services } = context;
  const { config, paths, store } = services;
  // prom-client is loaded at the first scrape of /metrics, if one comes (keyway-metrics.ts says what that saves).
  const metrics = new KeywayMetrics();
  // telemetry.otlp: each decision as an OpenTelemetry span and log record (the SDK loads only then).
  const telemetry = await startTelemetry(config, env, logger);
  if (telemetry) closers.add('telemetry', () => telemetry.shutdown());
  // A worker's refusals are budgeted by the primary, once for all workers (workers/shared-refusals.ts).
  const auditWriter = await openAudit(services, env, metrics, logger, options.worker?.refusals ?? options.refusals, options.worker?.audit);
  closers.add('audit log', () => auditWriter.close());
  // The policy (YAML rules compiled, Cedar files): a worker parses the texts its primary read.
  const loadPolicyOf = (next: Config) => loadPolicy(next, options.worker?.policyTexts?.());
  const live = new LiveConfig({
    services,
    env,
    policy: await loadPolicyOf(config),
    loadPolicy: loadPolicyOf,
    load: options.worker === undefined ? () => loadConfigIsolated({ home: options.home, file: options.configFile }) : async () => options.worker!.config(),
    dns: options.dns,
    audit: auditWriter,
    logger,
  });
  const extraCaFiles = config.proxy.upstream_ca.map((p) => resolveFromHome(config, p));
  // egress.proxy: every connection below goes through the company's proxy (read once: a restart applies a change).
  const egress = egressSettings(config, env);
  if (egress) logger.info({ egress_proxy: `${egress.url.protocol}//${egress.url.host}`, no_proxy: egress.noProxy }, 'connections go through the egress proxy');
  const trust = trustStore(extraCaFiles);
  const upstream = createUpstream({ resolve: live.resolve, extraCaFiles, headersTimeoutMs: config.proxy.timeouts.upstream, egress, trust });
  closers.add('upstream client', () => upstream.close());
  const tokenEndpoints = createUpstream({ resolve: live.lookupHost, extraCaFiles, headersTimeoutMs: config.oauth.token_timeout, egress, trust });
  closers.add('token-endpoint client', () => tokenEndpoints.close());
  const webhook = approvalNotifier({ config: () => live.config, env, dispatcher: tokenEndpoints.dispatcher, logger });
  const approvals = new ApprovalDesk({
    store,
    audit: auditWriter,
    logger,
    limits: () => live.config.approvals,
    now: options.now ?? (() => new Date()),
    holder: { host: hostname(), pid: process.pid, started_at: context.startedAt, ...(config.audit.replica ? { replica: config.audit.replica } : {}) },
    notify: (record) => {
      webhook(record);
      slack?.room.storeChanged();
    },
  });
  await approvals.start();
  closers.add('approvals', () => approvals.stop());
  // approvals.slack: in the process that owns the admin listener only (a worker's holds reach it
  // through the store); loaded only when configured.
  const ownsRoom = options.worker === undefined && options.announce !== false && options.announce !== 'contain';
  const slack =
    ownsRoom && config.approvals.slack !== undefined
      ? (await import('../approvals/slack/index.ts')).startSlackApprovals({
          config: () => live.config,
          env,
          dispatcher: tokenEndpoints.dispatcher,
          store,
          desk: approvals,
          logger,
          audit: auditWriter,
          now: options.now ?? (() => new Date()),
        })
      : undefined;
  if (slack) closers.add('slack approvals', () => slack.stop());
  // Store changes rebuild the tables, and let go a held request whose approval was answered elsewhere.
  watchStore(store, live, logger, [() => approvals.storeChanged(), () => slack?.room.storeChanged()]);
  // Token endpoints are reached like upstreams (proxy.hosts, system CAs plus proxy.upstream_ca).
  // One lifecycle for every credential keyway renews itself (OAuth tokens, role credentials, minted
  // tokens): one Renewer, built once, given to each kind's facade.
  const renewing = {
    store,
    lockDir: paths.locksDir,
    timeoutMs: config.oauth.token_timeout,
    dispatcher: tokenEndpoints.dispatcher,
    logger,
    now: options.tokenClock,
    observer: metrics,
  };
  const renewer = new Renewer(renewing);
  const tokens = tokenManagerFor(() => live.config, { ...renewing, env }, renewer);
  const minted = new MintedTokens(renewing, renewer);
  const usage = new UsageRecorder(store);
  closers.add('usage recorder', () => usage.stop());
  const quotas = new QuotaLedger(store);
  closers.add('quota counts', () => quotas.close());
  // Budgets read from the config in force on each add and check: a reload applies at once; with
  // them each delegated agent's own (`agents delegate --budget`), as the agent table stands.
  const budgets = () => budgetsInForce(live.config.budgets, live.tables.agents);
  const spend = options.worker?.spend ?? (await ownSpendLedger(store, paths.dataDir, budgets, logger));
  closers.add('spend counts', () => spend.close());
  // The proxy's view: prices and budgets from the config in force, warnings through approvals.notify.
  const spending = spendPart({
    config: () => live.config,
    budgets,
    ledger: spend,
    notify: notifyPoster({ config: () => live.config, env, dispatcher: tokenEndpoints.dispatcher, logger }),
    logger,
  });
  // anomaly: each agent's history in the store (counts added every second, and at stop); an alert is
  // told as a budget's warning is; holds waiting are read from the approval records every process shares.
  const book = new AnomalyBook(store, () => new Set(Object.keys(live.config.agents)));
  closers.add('anomaly counts', () => book.close());
  // The histories of agents gone or expired leave the store (anomaly/book/prune.ts): one process
  // prunes (a worker leaves it to its primary).
  if (options.worker === undefined)
    book.startPruning((err) => logger.warn({ err: { message: err.message } }, 'anomaly: the histories of agents gone could not be pruned'));
  const tell = notifyPoster({ config: () => live.config, env, dispatcher: tokenEndpoints.dispatcher, logger });
  // With approvals.slack, an alert is also a plain message in the channel, posted by the process
  // that runs the Slack room (a worker's through the store); `keyway fetch`'s and `run --contain`'s
  // own keyways keep none.
  const slackAlert =
    (ownsRoom || options.worker !== undefined) && config.approvals.slack !== undefined
      ? (await import('../approvals/slack/alerts.ts')).slackAlertKeeper(store, options.now ?? (() => new Date()), (err) =>
          logger.warn({ err: { message: err.message } }, 'anomaly: an alert could not be kept for Slack'),
        )
      : undefined;
  const anomaly: Anomalies['anomaly'] = {
    judge: (...args) => book.judge(...args),
    count: (...args) => book.count(...args),
    learn: (...args) => book.learn(...args),
    wouldLearn: (...args) => book.wouldLearn(...args),
    alert: (payload, agent) => {
      tell(payload, { anomaly: agent });
      slackAlert?.(payload);
    },
    // Held for unusual use: a record that carries signals (its rule string is cut for display).
    holdsWaiting: (agent) =>
      approvals.list().filter((r) => r.state === 'pending' && r.agent === agent && r.signals !== undefined && r.signals.length > 0).length,
  };
  // audit.export follows the audit file from a cursor of its own, in `keyway start` only: a worker
  // leaves it to its primary, and `keyway fetch`'s and `run --contain`'s own keyways to the home's
  // keyway (its next start sends what they wrote).
  const exports = options.worker === undefined && options.announce !== false && options.announce !== 'contain';
  const auditExport =
    exports && config.audit.export.length > 0
      ? // Loaded only when configured: its sockets' modules (dgram, https, tls) stay out of a plain start.
        await (await import('../audit-export/index.ts')).startAuditExport({
          targets: config.audit.export,
          resolvePath: (p) => resolveFromHome(config, p),
          auditPath: paths.audit,
          dataDir: paths.dataDir,
          readSecret: (ref) => readSecretRef(ref, env, config.home),
          version: keywayVersion(),
          log: logger,
        })
      : undefined;
  if (auditExport) {
    closers.add('audit export', () => auditExport.stop());
    metrics.watchExport(() => auditExport.status());
  }
  const registryDir = listenersDir(env);
  const listeners = new ListenerRegistry(registryDir);
  closers.add('listener registry', () => listeners.close());
  return {
    ...context,
    metrics,
    telemetry,
    auditWriter,
    // Every line the proxy writes carries the policy's hash (one string read: the stages set the one that judged).
    audit: new CountingAudit(auditWriter, undefined, options.tallies, (event) => {
      event.policy ??= live.policy.hash;
    }),
    contexts: new SecureContextCache(new LeafMinter(context.ca)),
    live,
    upstream,
    tokenEndpoints,
    tokens,
    renewing: { renewer, store, dispatcher: tokenEndpoints.dispatcher, timeoutMs: config.oauth.token_timeout },
    minted,
    usage,
    quotas,
    spend,
    spending,
    approvals,
    slack,
    anomaly,
    auditExport,
    ownPorts: new Set<number>(),
    listeners,
    registryDir,
  };
}

/**
 * The process's own spend ledger (no workers, or a primary of workers), journaled in the data
 * directory (spend/ledger/journal.ts): what a crash left out of the store is counted again before traffic.
 */
async function ownSpendLedger(store: SpendStore, dataDir: string, budgets: () => readonly BudgetConfig[], logger: Pick<Logger, 'warn'>): Promise<SpendLedger> {
  // Its own journal first (a live holder), then those of killed keyways on this home.
  const journal = SpendJournal.create(dataDir);
  const adopted = await SpendJournal.adopt(dataDir);
  const skipped = adopted.reduce((n, j) => n + j.skipped, 0);
  if (skipped > 0) logger.warn({ lines: skipped }, 'spend journal lines that could not be read were skipped (a line cut short by a crash)');
  const ledger = new SpendLedger({
    store,
    budgets,
    journal,
    onError: (err) => logger.warn({ err: err.message }, 'model spend not yet added to the store; tried again'),
  });
  const recounted = await ledger.recover(adopted);
  if (recounted > 0)
    logger.warn({ answers: recounted }, 'model spend the store did not have yet (keyway stopped without its last flush) was counted from the spend journal');
  return ledger;
}
