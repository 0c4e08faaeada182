import { closestName } from '../../edit-distance.ts';
import { nearest } from '../messages.ts';
import { z } from 'zod';
import type { injectSchema } from '../grant-fields.ts';
import { GRANT_ID } from '../ids.ts';
import { agentSchema, type ruleSchema } from './agents.ts';
import { anomalySchema } from './anomaly.ts';
import { checkAnomalyAgentNames } from './anomaly-names.ts';
import { exportTargetSchema } from './audit-export.ts';
import { slackSchema } from './slack.ts';
import { identitiesSchema } from './identities.ts';
import { budgetsSchema, pricingSchema } from './spend.ts';
import { checkBudgetNames } from './spend-names.ts';
import { grantSchema, providerSchema } from './grants.ts';
import { secretSourcesSchema, storeKeySchema } from '../secret-sources.ts';
import {
  byteSize,
  cidr,
  domain,
  duration,
  egressProxy,
  httpsUrl,
  ipAddress,
  listen,
  noProxyEntry,
  positiveDuration,
  secretRef,
  zeroOrDuration,
} from './values.ts';

// The YAML config, validated once at the edge. Unknown keys are refused (strictObject), and every
// message carries the key path, so a typo is never silently ignored.

export { GRANT_ID, GRANT_TYPES, type GrantType } from '../ids.ts';
export { MAX_APPROVAL_WAIT_MS } from './agents.ts';

// How long keyway waits on a client in each phase of a connection (see src/proxy/driver/timeouts.ts for
// what each one covers). Every wait is bounded: a client that sends nothing, or too little, is
// dropped instead of holding a socket and a file descriptor until the process runs out of them.
const timeoutsSchema = z.strictObject({
  first_byte: positiveDuration.default(10_000),
  handshake: positiveDuration.default(10_000),
  headers: positiveDuration.default(30_000),
  idle: positiveDuration.default(60_000),
  body_stall: positiveDuration.default(60_000),
  // However busy: no connection outlives every check for ever (a sign-in is checked again on each
  // change, but a connection's age is the one bound that needs no change to happen).
  max_connection_age: positiveDuration.default(4 * 3_600_000),
  // No default here: proxy.upstream_timeout (the older key) fills it in when it is absent.
  upstream: positiveDuration.optional(),
});

const slugRecord = <T extends z.ZodType>(value: T) =>
  z.record(z.string().regex(GRANT_ID, 'expected an id of a-z, 0-9 and -, up to 63 characters'), value).default({});

const WORKERS = 'expected a number of processes from 1 to 256, or auto';

const configObject = z.strictObject({
  proxy: z
    .strictObject({
      listen: listen.default({ host: '127.0.0.1', port: 8787 }),
      unmatched: z.enum(['tunnel', 'deny']).default('tunnel'),
      upstream_ca: z.array(z.string()).default([]),
      hosts: z.record(z.string(), ipAddress).default({}),
      // Destinations are refused when they resolve to loopback, private, link-local, unique-local,
      // CGN or metadata addresses; these ranges are let through anyway.
      allow_networks: z.array(cidr).default([]),
      // With unmatched: deny, hosts that may still be tunnelled blind.
      allow_tunnel: z.array(domain).default([]),
      // Listeners for connections redirected to keyway (a sidecar's nftables rules): TLS routed by
      // SNI (to port 443), plain HTTP by Host; every such connection is `agent` (proxy/transparent/).
      transparent: z
        .strictObject({
          listen: listen.optional(),
          http_listen: listen.optional(),
          // The agent's DNS, redirected here by the pod's rules: every name answered with one
          // placeholder address, none asked outside (proxy/transparent/dns-answerer.ts).
          dns_listen: listen.optional(),
          agent: z.string().regex(GRANT_ID, 'expected an agent id of a-z, 0-9 and -').optional(),
        })
        .optional(),
      timeouts: timeoutsSchema.prefault({}),
      // On SIGTERM/SIGINT: how long requests in flight may take to finish before everything closes.
      drain_timeout: duration.default(10_000),
      // Processes serving the proxy's listeners (app/workers/): `auto` is one per core. With more
      // than one, `keyway start` runs a primary (admin listener, reload and stop, request-rate buckets) and N workers.
      workers: z.union([z.number().int().min(1, WORKERS).max(256, WORKERS), z.literal('auto')], { error: WORKERS }).default(1),
      // One agent's share of keyway, so that one agent cannot take it down for all (agent-load.ts):
      // its requests in flight (past it: 429 rate_limited), and the request bodies kept in memory
      // for a replay after a 401, by all agents and by one (past it: streamed, not replayed).
      max_in_flight_per_agent: z.number().int().min(1).default(256),
      max_replay_memory: byteSize.default(64 * 1024 * 1024),
      max_replay_memory_per_agent: byteSize.default(16 * 1024 * 1024),
      // The largest request body or WebSocket message keyway holds to swap a grant's placeholder in
      // (inject: {body: true}); a larger one goes on unswapped (audit body_swap: too_large).
      max_body_swap: byteSize.default(1024 * 1024),
      // The older name of timeouts.upstream, still accepted; timeouts.upstream wins when both are set.
      upstream_timeout: positiveDuration.optional(),
    })
    .prefault({})
    .transform(({ timeouts, upstream_timeout, ...proxy }) => {
      const upstream = timeouts.upstream ?? upstream_timeout ?? 60_000;
      return { ...proxy, upstream_timeout: upstream, timeouts: { ...timeouts, upstream } };
    }),
  admin: z
    .strictObject({
      listen: listen.default({ host: '127.0.0.1', port: 8788 }),
      enabled: z.boolean().default(true),
      // Host names (optionally :port) the admin API also answers to, beyond its own address (DNS rebinding guard).
      allowed_hosts: z
        .array(z.string().regex(/^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/, 'a host name or address, optionally with :port'))
        .default([]),
    })
    .prefault({}),
  // Where grants, agents and tokens are kept: the file data/store.json (default), or a PostgreSQL
  // database shared by several replicas. The URL holds a password, so only a reference to it.
  store: z
    .strictObject({
      backend: z.enum(['file', 'postgres']).default('file'),
      url: secretRef.optional(),
      // postgres: connections each keyway keeps (writes, re-reads; refresh locks take their own).
      pool_size: z.number().int().min(1).max(64).default(4),
      // postgres: the longest a statement may run before it fails (a hung database fails a write
      // instead of holding it; the request path never waits on the database).
      statement_timeout: positiveDuration.default(5_000),
      // What keeps the master key (issue 49): \`file\`, data/master.key as it is (the default), or a
      // KMS that wraps it, so nothing on disk decrypts the store alone (credentials/store/key-wrap.ts).
      key: storeKeySchema,
    })
    .prefault({})
    .superRefine((store, ctx) => {
      if (store.backend === 'postgres' && store.url === undefined) {
        ctx.addIssue({ code: 'custom', path: ['url'], message: 'store.backend postgres needs store.url: env:NAME or file:PATH holding postgres://…' });
      }
    }),
  audit: z
    .strictObject({
      path: z.string().default('logs/audit.jsonl'),
      // Rotate logs/audit.jsonl before it would pass this size; the chain continues in the next file.
      max_bytes: byteSize.default(50 * 1024 * 1024),
      // Rotated files kept; older ones are deleted (verify still checks what remains).
      keep: z.number().int().min(1).default(10),
      // Rotation never deletes a file last written less than this long ago, even past `keep`: a flood
      // of lines (an agent's refusals) cannot push recent evidence out; it costs disk instead, and
      // the disk guard refuses injection (503 audit_unavailable) if the disk fills. 1h by default:
      // a file pruned younger than that means keep x max_bytes (500 MiB by default) was written in
      // under an hour, a flood rather than traffic, and an hour leaves time for an alert
      // (keyway_audit_retention_held_files, /readyz) to reach someone. 0s: off (keep alone decides).
      min_retention: z.union([z.literal(0), duration]).default(3_600_000),
      // How often the chain head is signed (Ed25519, logs/audit.checkpoints.jsonl) while lines come;
      // a checkpoint is also signed at every rotation and at stop. 0: only those.
      checkpoint_interval: zeroOrDuration.default(5 * 60_000),
      // Write-ahead (issue 46): a request's first line is in the kernel (or committed) before its
      // credential leaves, and its outcome follows with the same id, so a crash loses no record of a
      // credential's use. false: one line per request, written after its answer (a SIGKILL loses
      // the lines not yet written), for less CPU per request (docs/perf/write-ahead.md).
      write_ahead: z.boolean().default(true),
      // Written as `replica` on every line. With store.backend postgres it defaults to the host name
      // (the pod's name in Kubernetes), so the lines of several replicas can be told apart.
      replica: z
        .string()
        .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, ".", "_" and "-", up to 63')
        .optional(),
      // Where the lines go: the file above (default), or the table keyway_audit in the store's
      // PostgreSQL database, one hash chain per replica (store.backend postgres only).
      sink: z.enum(['file', 'postgres']).default('file'),
      // Identical refusals (same agent, or client address before one is identified, decision, code,
      // method, host, port; not the path) written in full per refusal_interval; past it they are
      // counted into one summary line (repeated: N). One agent's refusals of any kind: 5x this; all
      // agents and addresses together: 20x (audit/refusal-budget.ts).
      refusal_budget: z.number().int().min(1).max(1_000_000).default(20),
      refusal_interval: positiveDuration.default(10_000),
      // Where each line is also sent as it is written (a SIEM): OCSF over https, CEF or RFC 5424
      // syslog over TCP, TLS or UDP; a durable cursor per target (data/audit-export/) resumes after a restart.
      export: z.array(exportTargetSchema).max(8).default([]),
    })
    .prefault({}),
  // Requests a rule sends to a person (approve: human): the bounds on what is held, and where each
  // pending approval is announced (a JSON POST; the URL may itself be a secret, so it may be a reference).
  approvals: z
    .strictObject({
      notify: z.union([httpsUrl, secretRef]).optional(),
      max_pending: z.number().int().min(1).max(10_000).default(100),
      max_pending_per_agent: z.number().int().min(1).max(10_000).default(10),
      // The largest request body held while it waits (and hashed, so a yes covers that body only).
      max_held_body: byteSize.default(1024 * 1024),
      // How long an approval asked with wait: 0 stays open for a person to answer.
      pending_ttl: positiveDuration.default(15 * 60_000),
      // Pending approvals posted to a Slack channel, answered with its buttons (src/approvals/slack/).
      slack: slackSchema.optional(),
    })
    .prefault({}),
  // Unusual credential use, read from each agent's own history (src/anomaly/, docs/anomaly.md).
  anomaly: anomalySchema,
  oauth: z
    .strictObject({
      refresh_skew: duration.default(60_000),
      token_timeout: duration.default(10_000),
      // keyway connect --mcp: the https URL where the operator hosts keyway's OAuth Client ID Metadata
      // Document (`keyway oauth client-metadata URL` prints it); used where an authorization server supports them.
      client_metadata_url: z
        .string()
        .refine(clientMetadataUrlOk, 'expected an https:// URL with a path, such as https://example.com/keyway/client.json')
        .optional(),
    })
    .prefault({}),
  // The company's HTTP proxy: every connection keyway makes goes through it by CONNECT (src/egress/egress-proxy.ts).
  egress: z
    .strictObject({
      // http:// or https:// URL of the proxy; one with credentials only by reference (env:NAME or file:PATH holding the URL).
      proxy: egressProxy.optional(),
      // Hosts reached directly: a name (and its subdomains; `.name` and `*.name` say the same), an IP address, a CIDR range.
      no_proxy: z.array(noProxyEntry).default([]),
      // address: CONNECT to the address keyway resolved and checked (names keyway cannot resolve are
      // refused); name: CONNECT by name and let the proxy resolve (where only it has DNS, or it filters by name).
      connect_to: z.enum(['address', 'name']).default('address'),
    })
    .prefault({}),
  // Decisions exported as OpenTelemetry spans and log records (src/observability/otlp.ts).
  telemetry: z
    .strictObject({
      otlp: z
        .strictObject({
          // The collector's OTLP/HTTP base URL: spans go to ENDPOINT/v1/traces, log records to ENDPOINT/v1/logs.
          endpoint: z.string().refine(otlpEndpointOk, 'expected an http:// or https:// URL such as http://127.0.0.1:4318'),
          // Sent with each export (a collector's auth); a value may be a reference, env:NAME or file:PATH.
          headers: z.record(z.string().regex(/^[A-Za-z0-9-]+$/, 'expected a header name'), z.string()).default({}),
          service_name: z.string().min(1).default('keyway'),
          timeout: positiveDuration.default(10_000),
          // How long decisions are batched before an export.
          batch_delay: positiveDuration.default(5_000),
        })
        .optional(),
    })
    .prefault({}),
  // keyway run --contain (src/contain/): what a contained command does not see.
  contain: z
    .strictObject({
      // Hidden besides keyway's own files and the user's credential files (docs/containment.md lists
      // them): each an absolute path, or ~/PATH under the home folder.
      hide: z.array(z.string().regex(/^(\/|~\/)/, 'expected an absolute path or ~/PATH')).default([]),
    })
    .prefault({}),
  // Policy as code (docs/policy-as-code.md): Cedar files read after <home>/policies/*.cedar, each an
  // absolute path or one under the home; each must be writable by keyway's user alone (policy/cedar/file-trust.ts).
  policy: z
    .strictObject({
      files: z.array(z.string().regex(/\.cedar$/, 'expected a path to a .cedar file')).default([]),
    })
    .prefault({}),
  // Where grants' secrets may live besides keyway's store (config/secret-sources.ts).
  secret_sources: secretSourcesSchema,
  providers: slugRecord(providerSchema),
  grants: slugRecord(grantSchema),
  agents: slugRecord(agentSchema),
  // Signed tokens (JWT) an agent may sign in with instead of a key (src/identity-tokens/).
  identities: identitiesSchema,
  // Model spend (issue 63, docs/spend.md): USD per million tokens by model glob, over the shipped
  // defaults (spend/core/default-prices.ts); budgets per agent, grant or end user.
  pricing: pricingSchema,
  budgets: budgetsSchema,
});

export const configSchema = configObject.superRefine((config, ctx) => {
  // MCP conditions judge messages on a grant's MCP endpoints: on a grant with none, they would never apply.
  for (const [agentId, agent] of Object.entries(config.agents)) {
    agent.rules.forEach((rule, i) => {
      const named = (['tools', 'args', 'mcp_methods'] as const).find((key) => rule[key] !== undefined);
      const grant = config.grants[rule.grant];
      if (named && grant && grant.mcp === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['agents', agentId, 'rules', i, named],
          message: `${named} applies on MCP endpoints: give grants.${rule.grant}.mcp: {paths: [/mcp]}`,
        });
      }
    });
  }
  // An agent without a key can only be reached through an identity token: one no identity maps to is a mistake.
  const mapped = new Set(config.identities.flatMap((identity) => identity.map.map((rule) => rule.agent)));
  // With identities, the proxy user `jwt` says "the password is a token" (proxy/identify/agent.ts).
  if (config.identities.length > 0 && config.agents['jwt'] !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['agents', 'jwt'],
      message: 'the agent id jwt is the proxy user that carries an identity token: give this agent another id',
    });
  }
  // A map rule naming no agent of the config, near one that has no key: the typo is the rule's
  // (agent: cii for ci), said there first, not as the real agent's missing key. Near one that has a
  // key, a typo too: the token would sign in as nobody. A rule may name an agent of the store (made
  // with `keyway agents add`), which the config cannot see: taken when it is no near miss of a
  // config agent's id (a typo's distance, closestName's, not nearest's looser one).
  const keyless = Object.keys(config.agents).filter((id) => config.agents[id]!.key === undefined && !mapped.has(id));
  const blamed = new Set<string>();
  config.identities.forEach((identity, i) => {
    identity.map.forEach((rule, j) => {
      if (config.agents[rule.agent] !== undefined) return;
      const near = nearest(rule.agent, keyless);
      const keyed = near === undefined ? closestName(rule.agent, Object.keys(config.agents)) : undefined;
      if (near === undefined && keyed === undefined) return;
      if (near !== undefined) blamed.add(near);
      ctx.addIssue({
        code: 'custom',
        path: ['identities', i, 'map', j, 'agent'],
        message:
          near !== undefined
            ? `no agent "${rule.agent}" in the config; did you mean ${near}? (agents.${near} has no key, and no rule maps a token to it)`
            : `no agent "${rule.agent}" in the config; did you mean ${keyed}? (an agent of the store needs an id no typo away from a config agent's)`,
      });
    });
  });
  for (const [agentId, agent] of Object.entries(config.agents)) {
    if (agent.key === undefined && !mapped.has(agentId) && !blamed.has(agentId)) {
      ctx.addIssue({
        code: 'custom',
        path: ['agents', agentId, 'key'],
        message: 'expected a key (env:NAME or file:PATH), or an identities rule that maps a token to this agent',
      });
    }
  }
  // A grant's secret from a source names one of secret_sources.
  const sources = Object.keys(config.secret_sources);
  for (const [grantId, grant] of Object.entries(config.grants)) {
    const secret = grant.secret;
    if (secret?.kind !== 'source' || config.secret_sources[secret.from] !== undefined) continue;
    const near = nearest(secret.from, sources);
    ctx.addIssue({
      code: 'custom',
      path: ['grants', grantId, 'secret', 'from'],
      message: `no secret source "${secret.from}" in secret_sources${near ? `; did you mean ${near}?` : sources.length ? ` (there: ${sources.join(', ')})` : ': add it there'}`,
    });
  }
  checkBudgetNames(config, (path, message) => ctx.addIssue({ code: 'custom', path, message }));
  checkAnomalyAgentNames(config, (path, message) => ctx.addIssue({ code: 'custom', path, message }));
  // The audit table lives in the store's database: there is no other database to write it to.
  if (config.audit.sink === 'postgres' && config.store.backend !== 'postgres') {
    ctx.addIssue({ code: 'custom', path: ['audit', 'sink'], message: "postgres writes to the store's database: it needs store.backend postgres" });
  }
  if (config.audit.sink === 'postgres' && config.audit.export.length > 0) {
    // The cursor follows one file's chain; the table holds one chain per replica (not yet followed).
    ctx.addIssue({
      code: 'custom',
      path: ['audit', 'export'],
      message: 'audit.export follows the audit file: it needs audit.sink file (postgres is not yet exported)',
    });
  }
});

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type GrantConfig = z.output<typeof grantSchema>;
export type AgentConfig = z.output<typeof agentSchema>;
export type ProviderConfig = z.output<typeof providerSchema>;
export type InjectConfig = z.output<typeof injectSchema>;
export type TimeoutsConfig = ParsedConfig['proxy']['timeouts'];
export type RuleConfig = z.output<typeof ruleSchema>;
export type { IdentityConfig } from './identities.ts';

/** A Client ID Metadata Document's URL: https, a path, no user, fragment or dot segments (the draft's rules). */
function otlpEndpointOk(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.username === '' && url.password === '' && url.search === '';
  } catch {
    return false;
  }
}

export function clientMetadataUrlOk(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' && url.pathname !== '/' && url.username === '' && url.password === '' && url.hash === '' && !/\/\.\.?(\/|$)/.test(text);
  } catch {
    return false;
  }
}
