import type { Grant } from '../credentials/grant.ts';
// What the admin routes are given by the composition root (src/app/): the shared services and the
// running proxy's live parts. Route modules (src/admin/api/*.ts) take this and return their routes.

import type { ApprovalDesk } from '../approvals/desk.ts';
import type { SlackApprovals } from '../approvals/slack/index.ts';
import type { AuditSink } from '../audit/index.ts';
import type { Config } from '../config/index.ts';
import type { MinuteCount } from '../observability/counting-audit.ts';
import type { AgentTable } from '../credentials/agents.ts';
import type { TokenTools } from '../operations/tokens.ts';
import type { Dispatcher } from '../net/undici.ts';
import type { Services } from '../open-home.ts';
import type { MetricsText, Readiness } from './operate-routes.ts';
import type { ExportView } from '../audit-export/status-view.ts';
import type { AdminAuditTarget } from './router.ts';

/** Live numbers only the running process knows. Nothing in it is secret. */
export interface ProxyActivity {
  pid: number;
  started_at: string;
  /** Audit lines written for proxied requests since start: every request served, refused ones too. */
  requests: number;
  /** Of those, the ones keyway refused or failed (decision deny or error). */
  refused: number;
  /** The last hour of proxied requests, minute by minute (the dashboard's overview). */
  minutes: MinuteCount[];
  /** Under proxy.workers: each worker process, its counts included in the figures above. */
  workers?: WorkerStatus[] | undefined;
}

/** One worker process (proxy.workers), for `keyway status`. */
export interface WorkerStatus {
  index: number;
  pid: number;
  started_at: string;
  /** Times this worker's place was taken by a new process after one died. */
  restarts: number;
  /** Null: it did not answer in time (starting, stuck, or just replaced). */
  connections: number | null;
  requests: number | null;
  audit: 'ok' | 'failing' | null;
}

export interface AdminDeps {
  services: Services;
  /** The agent table in force (swapped whole when the store changes). */
  agents: () => AgentTable;
  /** The grants in force, as the proxy uses them: the router of the table in force (one object per table build). */
  grants: () => { list(): readonly Grant[] };
  /** The proxied requests' sink: its health is the audit log's. */
  audit: AuditSink;
  /** The audit writer itself, for the admin lines (not proxied requests: `keyway status` does not count them). */
  adminAudit: AdminAuditTarget;
  /** What `keyway status` shows beyond the tables: counted by the composition root. */
  activity: () => ProxyActivity | Promise<ProxyActivity>;
  /** POST /api/reload: re-reads the config file, as SIGHUP does (app/live-config.ts audits it); `client` is the caller's address. */
  reload: (client: string, actor: string | null) => Promise<{ reloaded: boolean }>;
  /** audit.export's targets (none where this process does not export), for /api/status. */
  exports?: (() => readonly ExportView[]) | undefined;
  /** For /readyz: checked on every call. */
  readiness: () => Readiness;
  /** For /metrics. */
  metrics: MetricsText;
  /** The running proxy's environment, for the config's env: references (grant secrets, provider client secrets). */
  env: NodeJS.ProcessEnv;
  /**
   * The running proxy's token manager and token-endpoint client: a refresh asked for over the API
   * joins the proxy's single flight for that grant instead of racing it.
   */
  tokens: TokenTools;
  /** The proxy URL an agent uses with these credentials: where this process's proxy listens. */
  proxyUrl: (credentials: { id: string; key: string }) => string;
  /** For the OAuth routes: providers are reached as `keyway connect` and the token refresher reach them. */
  oauth: OAuthDeps;
  /** Requests rules send to a person: listed and answered here, let go wherever they are held. */
  approvals: Pick<ApprovalDesk, 'list' | 'get' | 'decide'>;
  /** approvals.slack mode: http: the handler of Slack's callbacks (undefined otherwise: 404). */
  slackInteractivity?: (() => SlackApprovals['interactivity']) | undefined;
  /** Aborted when the admin server starts closing: long-lived answers (event streams, device polls) end. Set by server.ts. */
  closing: AbortSignal;
}

export interface OAuthDeps {
  /** The config in force: a reload may add or change providers. */
  config: () => Config;
  /** Where `env:` references (a provider's client_secret) are read. */
  env: NodeJS.ProcessEnv;
  /** Token and device endpoints go through this (proxy.hosts, the system CAs plus proxy.upstream_ca). */
  dispatcher: Dispatcher;
}
