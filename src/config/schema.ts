import { isIP } from 'node:net';
import { z } from 'zod';
import { limitsSchema } from './limits.ts';
import type { DomainPattern } from './domain-pattern.ts';
import { parseDomainPatternStrict } from './domain-breadth.ts';
import { commonGrantShape, domainText, grantUnion, type injectSchema, messageCheck } from './grant-fields.ts';
import { GRANT_ID } from './ids.ts';
import { parseByteSize } from './byte-size.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { parseListen, type ListenAddress } from './listen.ts';
import { isLoopbackAddress } from './loopback.ts';
import { parseSecretRef, type SecretRef } from './secret-ref.ts';
import {
  CMD_CACHE_DEFAULT_MS,
  CMD_CACHE_MAX_MS,
  CMD_CACHE_MIN_MS,
  CMD_MAX_ARGS,
  CMD_TIMEOUT_DEFAULT_MS,
  CMD_TIMEOUT_MAX_MS,
  CMD_TIMEOUT_MIN_MS,
  type SecretCommand,
} from './secret-command.ts';
import { parseCidr } from './cidr.ts';
import { nearest } from './messages.ts';
import { globSyntaxError, HTTP_METHOD, WEEKDAYS, parseHours, timeZoneError } from './rule-syntax.ts';

// The YAML config, validated once at the edge. Unknown keys are refused (strictObject), and every
// message carries the key path, so a typo is never silently ignored.

export { GRANT_ID, GRANT_TYPES, type GrantType } from './ids.ts';

/** zod's "expected string" for a value keyway reads as text, in words that say what to write. */
const text = (what: string) => z.string({ error: (issue) => (issue.code === 'invalid_type' ? `expected ${what}` : undefined) });

const listen = text('HOST:PORT such as 127.0.0.1:8787').transform((text, ctx): ListenAddress => {
  const parsed = parseListen(text);
  if (!parsed) {
    ctx.addIssue({ code: 'custom', message: `expected HOST:PORT, got "${text}"` });
    return z.NEVER;
  }
  return parsed;
});

const duration = text('a duration like 60s (or 500ms, 15m, 1h, 7d)').transform((text, ctx): number => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a duration like 60s (or 500ms, 15m, 1h, 7d), got "${text}"` });
    return z.NEVER;
  }
  return ms;
});

const secretRef = text('a reference, env:NAME or file:PATH').transform((text, ctx): SecretRef => {
  const ref = parseSecretRef(text);
  if (!ref) {
    // Never echo the value: someone may have pasted the secret itself here.
    ctx.addIssue({ code: 'custom', message: 'expected a reference, env:NAME or file:PATH (never the secret itself)' });
    return z.NEVER;
  }
  return ref;
});

/** 0 (off, or at once) or a duration. */
const zeroOrDuration = z.union([z.literal(0), z.literal('0'), duration]).transform((value): number => (value === '0' ? 0 : value));

/** The longest a held request waits for a person: a client holds a connection open all that time. */
export const MAX_APPROVAL_WAIT_MS = 30 * 60_000;

/** A duration between `min` and `max` (milliseconds), named in the message as written. */
const durationWithin = (min: number, max: number) =>
  duration.refine((ms) => ms >= min && ms <= max, { message: `expected a duration from ${formatDuration(min)} to ${formatDuration(max)}` });

/** `{cmd: [PROG, ARG…], cache, timeout}`: a grant's secret printed by a command (config/secret-command.ts). */
const secretCommand = z
  .strictObject({
    cmd: z
      .array(
        z
          .string()
          .min(1, { message: 'expected a non-empty word' })
          .refine((w) => !w.includes('\0'), { message: 'a word cannot hold a NUL byte' }),
        {
          error: 'expected a list [PROG, ARG…] (run without a shell)',
        },
      )
      .min(1, { message: 'expected at least the program: [PROG, ARG…]' })
      .max(CMD_MAX_ARGS, { message: `expected at most ${CMD_MAX_ARGS} words` }),
    cache: durationWithin(CMD_CACHE_MIN_MS, CMD_CACHE_MAX_MS).default(CMD_CACHE_DEFAULT_MS),
    timeout: durationWithin(CMD_TIMEOUT_MIN_MS, CMD_TIMEOUT_MAX_MS).default(CMD_TIMEOUT_DEFAULT_MS),
  })
  .transform((c): SecretCommand => ({ kind: 'cmd', argv: Object.freeze([...c.cmd]), cacheMs: c.cache, timeoutMs: c.timeout }));

/**
 * A grant's secret: a reference (env:NAME, file:PATH) or a command that prints it. Chosen by the
 * value's shape, so that a mistake in a command is named at its own key (secret.cache, secret.cmd.1).
 */
const grantSecret = z.unknown().transform((value, ctx): SecretRef | SecretCommand => {
  const result = typeof value === 'object' && value !== null && !Array.isArray(value) ? secretCommand.safeParse(value) : secretRef.safeParse(value);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    const message =
      typeof value === 'string' || value === undefined
        ? 'expected env:NAME, file:PATH or {cmd: [PROG, ARG…], cache, timeout} (never the secret itself)'
        : issue.message;
    ctx.addIssue({ code: 'custom', message, path: issue.path });
  }
  return z.NEVER;
});

// Checked by domainText, so the pattern it parses to is never an error string here.
const toPattern = (text: string) => parseDomainPatternStrict(text) as DomainPattern;
const domain = domainText.transform(toPattern);

/** A size in bytes: a number, or a string such as 512KiB, 50MiB, 1GB (KiB = 1024, KB = 1000). */
const byteSize = z.union([z.number(), z.string()]).transform((value, ctx): number => {
  const bytes = typeof value === 'number' ? value : (parseByteSize(value) ?? NaN);
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    ctx.addIssue({ code: 'custom', message: `expected a size such as 50MiB, 512KiB or a number of bytes, got "${String(value)}"` });
    return z.NEVER;
  }
  return bytes;
});

const ipAddress = z.string().refine((text) => isIP(text) !== 0, { message: 'expected an IP address' });

const cidr = z.string().refine((text) => typeof parseCidr(text) !== 'string', { message: 'expected a CIDR range such as 10.1.0.0/16 or fd00::/8' });

const httpsUrl = z.string().refine(
  (text) => {
    try {
      const url = new URL(text);
      if (url.protocol === 'https:') return true;
      return url.protocol === 'http:' && (url.hostname === 'localhost' || isLoopbackAddress(url.hostname));
    } catch {
      return false;
    }
  },
  { message: 'expected an https:// URL (http:// only on loopback)' },
);

const providerSchema = z.strictObject({
  authorize_url: httpsUrl.optional(),
  token_url: httpsUrl,
  revoke_url: httpsUrl.optional(),
  device_authorization_url: httpsUrl.optional(),
  scopes: z.array(z.string()).default([]),
  domains: z.array(domain).default([]),
  client_id: z.string().optional(),
  client_secret: secretRef.optional(),
  client_auth: z.enum(['basic', 'body']).default('basic'),
  token_body: z.enum(['form', 'json']).default('form'),
  extra_params: z.record(z.string(), z.string()).default({}),
});

// The grant: every grant's fields and its type's (grant-fields.ts, grant-types/), with its domains
// parsed and its secret as a reference.
const grantSchema = grantUnion(
  {
    domains: commonGrantShape.domains.transform((list) => list.map(toPattern)),
    secret: grantSecret.optional(),
    // Every agent's requests through this grant together (config/limits.ts).
    limits: limitsSchema.optional(),
    // A client certificate keyway presents to this grant's hosts (mTLS): PEM files or variables, by
    // reference like the secret. The whole credential of an mtls grant; beside the secret on others.
    client_certificate: z.strictObject({ certificate: secretRef, private_key: secretRef, passphrase: secretRef.optional() }).optional(),
  },
  (grant, fields, fail) => {
    if (grant.inject?.header && grant.inject.query) fail('inject', 'use header or query, not both');
    if (fields.noInject !== undefined && grant.inject !== undefined) fail('inject', fields.noInject);
    if (fields.secretRequired && grant.secret === undefined) fail('secret', 'expected env:NAME or file:PATH (or add the grant with `keyway grants add`)');
    fields.configCheck?.(grant, fail);
  },
);

// Every rule value is checked here, once, so any command that loads the config refuses a bad glob,
// time zone or range (config/rule-syntax.ts); policy/rules.ts compiles values already checked.
const ruleSchema = z
  .strictObject({
    grant: z.string().regex(GRANT_ID),
    deny: z.boolean().default(false),
    methods: z
      .array(
        z
          .string()
          .toUpperCase()
          .refine((m) => HTTP_METHOD.test(m), { error: (issue) => `"${String(issue.input).toUpperCase()}" is not an HTTP method` }),
      )
      .refine((list) => list.length > 0, 'expected at least one method (leave methods out for any)')
      .optional(),
    // methods may name methods outside the standard set (WebDAV's PROPFIND, a private API's own)
    // only when the rule says so: otherwise a typo (GTE) would refuse every GET in silence.
    custom_methods: z.boolean().default(false),
    paths: z
      .array(z.string().check(messageCheck(globSyntaxError)))
      .refine((list) => list.length > 0, 'expected at least one path glob (leave paths out for any)')
      .optional(),
    hours: z
      .string()
      .check(
        messageCheck((text) => {
          const parsed = parseHours(text);
          return typeof parsed === 'string' ? parsed : undefined;
        }),
      )
      .optional(),
    days: z
      .array(z.enum(WEEKDAYS))
      .refine((list) => list.length > 0, 'expected at least one day (leave days out for every day)')
      .optional(),
    tz: z.string().check(messageCheck(timeZoneError)).optional(),
    sources: z
      .array(
        z.string().check(
          messageCheck((text) => {
            const parsed = parseCidr(text);
            return typeof parsed === 'string' ? parsed : undefined;
          }),
        ),
      )
      .refine((list) => list.length > 0, 'expected at least one address range (leave sources out for any)')
      .optional(),
    max_body: z
      .string()
      .refine((text) => parseByteSize(text) !== undefined, {
        error: (issue) => `expected a size such as 1MiB, 512KiB, 100kB or a number of bytes, got "${String(issue.input)}"`,
      })
      .optional(),
    mode: z.enum(['enforce', 'warn']).optional(),
    // A request this rule allows must say why (X-Keyway-Purpose): 400 purpose_required without.
    require_purpose: z.boolean().optional(),
    // On a grant's MCP endpoints (grants.ID.mcp), per JSON-RPC message (src/mcp/): the tools a
    // tools/call may name (globs, * any run of characters), the arguments it must carry (a glob for
    // a string, else equal), and protocol methods (initialize, tools/list, …) by name.
    tools: z
      .array(z.string().regex(/^[A-Za-z0-9_.*-]{1,128}$/, 'expected a tool name or glob (A-Z, a-z, 0-9, _ - . and *)'))
      .min(1, 'expected at least one tool (leave tools out for any)')
      .optional(),
    args: z
      .record(z.string().min(1).max(128), z.union([z.string().max(1024), z.number(), z.boolean()]))
      .refine((spec) => Object.keys(spec).length > 0, 'expected at least one argument (leave args out for any)')
      .optional(),
    mcp_methods: z
      .array(z.string().regex(/^[A-Za-z0-9_.$/*-]{1,128}$/, 'expected a JSON-RPC method name or glob, such as tools/call or resources/*'))
      .min(1, 'expected at least one method (leave mcp_methods out for any)')
      .optional(),
    // A request this rule allows waits for a person's yes (approvals/): `approval` says how long it
    // waits (0: answered at once with 403 approval_required) and how long a yes covers (0: this request).
    approve: z.literal('human').optional(),
    approval: z
      .strictObject({
        wait: zeroOrDuration
          .refine((ms) => ms <= MAX_APPROVAL_WAIT_MS, { message: `expected at most ${formatDuration(MAX_APPROVAL_WAIT_MS)}` })
          .default(120_000),
        window: zeroOrDuration.default(0),
      })
      .optional(),
  })
  .check((ctx) => {
    if (!ctx.value.custom_methods) {
      for (const [index, method] of (ctx.value.methods ?? []).entries()) {
        if (STANDARD_METHODS.includes(method)) continue;
        const near = nearest(
          method,
          STANDARD_METHODS.map((m) => m.toLowerCase()),
        );
        ctx.issues.push({
          code: 'custom',
          input: method,
          path: ['methods', index],
          message: `"${method}" is not a standard HTTP method${near ? `; did you mean ${near.toUpperCase()}?` : ''} (a method of your own: set custom_methods: true on the rule)`,
        });
      }
    }
    if (ctx.value.approval !== undefined && ctx.value.approve === undefined) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        path: ['approval'],
        message: 'approval says how a person approves: it needs approve: human beside it',
      });
    }
    if (ctx.value.deny && ctx.value.approve !== undefined) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        path: ['approve'],
        message: 'approve belongs on an allow rule (a deny rule refuses whoever approves)',
      });
    }
    if (ctx.value.deny && ctx.value.require_purpose !== undefined) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        path: ['require_purpose'],
        message: 'require_purpose belongs on an allow rule (a deny rule refuses whatever the purpose)',
      });
    }
    // A deny rule's conditions say what to refuse; "refuse bodies up to N" is never what is meant.
    if (ctx.value.deny && ctx.value.max_body !== undefined) {
      ctx.issues.push({ code: 'custom', input: ctx.value, path: ['max_body'], message: 'max_body belongs on an allow rule (it caps what the rule allows)' });
    }
  });

const agentSchema = z
  .strictObject({
    key: secretRef,
    grants: z.array(z.string().regex(GRANT_ID)).optional(),
    lease_ttl: duration.optional(),
    max_lease_ttl: duration.optional(),
    mode: z.enum(['enforce', 'warn']).default('enforce'),
    rules: z.array(ruleSchema).default([]),
    // This agent's requests (config/limits.ts); grant_limits: its requests through one grant.
    limits: limitsSchema.optional(),
    grant_limits: z.record(z.string().regex(GRANT_ID), limitsSchema).optional(),
  })
  .check((ctx) => {
    const agent = ctx.value;
    const fail = (path: (string | number)[], message: string) => ctx.issues.push({ code: 'custom', input: agent, path, message });
    // A rule on a grant the agent may not use is a typo that would leave the real grant open.
    agent.rules.forEach((rule, i) => {
      if (agent.grants && !agent.grants.includes(rule.grant)) {
        fail(['rules', i, 'grant'], `"${rule.grant}" is not one of this agent's grants (${agent.grants.join(', ')})`);
      }
    });
    for (const grant of Object.keys(agent.grant_limits ?? {})) {
      if (agent.grants && !agent.grants.includes(grant))
        fail(['grant_limits', grant], `"${grant}" is not one of this agent's grants (${agent.grants.join(', ')})`);
    }
    // A lease_ttl longer than max_lease_ttl could never be granted as written.
    if (agent.lease_ttl !== undefined && agent.lease_ttl <= 0) fail(['lease_ttl'], 'expected a positive duration');
    if (agent.max_lease_ttl !== undefined && agent.max_lease_ttl <= 0) fail(['max_lease_ttl'], 'expected a positive duration');
    if (agent.lease_ttl !== undefined && agent.max_lease_ttl !== undefined && agent.lease_ttl > agent.max_lease_ttl) {
      fail(['lease_ttl'], `${formatDuration(agent.lease_ttl)} is longer than max_lease_ttl ${formatDuration(agent.max_lease_ttl)}`);
    }
  });

// How long keyway waits on a client in each phase of a connection (see src/proxy/timeouts.ts for
// what each one covers). Every wait is bounded: a client that sends nothing, or too little, is
// dropped instead of holding a socket and a file descriptor until the process runs out of them.
const positiveDuration = duration.refine((ms) => ms > 0, { message: 'expected a duration above zero' });
const timeoutsSchema = z.strictObject({
  first_byte: positiveDuration.default(10_000),
  handshake: positiveDuration.default(10_000),
  headers: positiveDuration.default(30_000),
  idle: positiveDuration.default(60_000),
  body_stall: positiveDuration.default(60_000),
  // No default here: proxy.upstream_timeout (the older key) fills it in when it is absent.
  upstream: positiveDuration.optional(),
});

const slugRecord = <T extends z.ZodType>(value: T) =>
  z.record(z.string().regex(GRANT_ID, 'expected an id of a-z, 0-9 and -, up to 63 characters'), value).default({});

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
          agent: z.string().regex(GRANT_ID, 'expected an agent id of a-z, 0-9 and -').optional(),
        })
        .optional(),
      timeouts: timeoutsSchema.prefault({}),
      // On SIGTERM/SIGINT: how long requests in flight may take to finish before everything closes.
      drain_timeout: duration.default(10_000),
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
    })
    .prefault({}),
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
  providers: slugRecord(providerSchema),
  grants: slugRecord(grantSchema),
  agents: slugRecord(agentSchema),
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
  // The audit table lives in the store's database: there is no other database to write it to.
  if (config.audit.sink === 'postgres' && config.store.backend !== 'postgres') {
    ctx.addIssue({ code: 'custom', path: ['audit', 'sink'], message: "postgres writes to the store's database: it needs store.backend postgres" });
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

/** A Client ID Metadata Document's URL: https, a path, no user, fragment or dot segments (the draft's rules). */
export function clientMetadataUrlOk(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' && url.pathname !== '/' && url.username === '' && url.password === '' && url.hash === '' && !/\/\.\.?(\/|$)/.test(text);
  } catch {
    return false;
  }
}

/** RFC 9110's methods, PATCH (RFC 5789) and QUERY (the safe method with a body): what a rule may name without custom_methods. */
const STANDARD_METHODS: readonly string[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', 'QUERY'];
