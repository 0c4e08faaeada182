// What the proxy reports for one request or tunnel, and the line it becomes: the shape every part
// of audit/ (and the proxy, and the app) reads, apart from record.ts (the line's format and hash
// chain) so that what record.ts uses (bound.ts) can name it without an import circle.

import type { AuditCode } from '../errors/index.ts';

/**
 * `admin`: not a proxied request but a change an operator made (a config reload, an admin API or CLI
 * write). `self_check`: keyway answered its own check host (`keyway doctor`): neither traffic nor a refusal.
 */
export type AuditDecision = 'inject' | 'tunnel' | 'deny' | 'error' | 'admin' | 'self_check' | 'approval';

/** What the proxy reports for one request or tunnel (the README's "Audit log"). */
export interface AuditEvent {
  ts: string;
  id: string;
  agent: string | null;
  grant: string | null;
  decision: AuditDecision;
  /** The refusal's or note's code (errors/codes.ts); null for a request that went through. */
  code: AuditCode | null;
  method: string | null;
  host: string;
  port: number;
  /** Never a query string or fragment: the writer applies stripQuery() again to be sure. */
  path: string | null;
  status: number | null;
  duration_ms: number;
  refreshed: boolean;
  client: string;
  // Extra fields, each only when it applies; written after the fixed ones, sorted by name.
  /** The rule that refused the request, or allowed it with a warning (`agents.x.rules[3] (…)`). */
  rule?: string | undefined;
  /** A connection redirected to keyway rather than sent to its proxy listener: `transparent` (proxy.transparent), `contain` (keyway run --contain). */
  via?: 'transparent' | 'contain' | undefined;
  /**
   * The hash of the policy in force (`sha256:…`, policy/cedar/hash.ts): the compiled YAML rules and
   * Cedar files that judged this request, or were loaded when the line was written (a `policy.load`
   * line: the one it loaded). `keyway audit verify` checks that a `policy.load` line loaded it.
   */
  policy?: string | undefined;
  /** `warn`: a refusal was only reported (policy mode warn). */
  policy_mode?: 'warn' | undefined;
  /** For `policy.load`: the Cedar files loaded, comma-separated absolute paths (none: YAML rules only). */
  files?: string | undefined;
  /** X-HTTP-Method-Override and its kin that the request carried (names only). */
  method_override?: string | undefined;
  /** X-Original-URL and its kin that the request carried (names only). */
  path_override?: string | undefined;
  /** How many copies of the injected secret the response guard redacted. */
  leak_redacted?: number | undefined;
  /**
   * Why this request could not be replayed after a 401 (or what its type asked to replay):
   * `skipped: body over 1 MiB` (written when the refusal came), `skipped: replay memory full` (proxy.max_replay_memory*: written whenever),
   * `skipped: the secret command printed the same value` (a cmd grant: its 401 went to the client),
   * `skipped: the secret source gave the same value` (a grant whose secret a secret source holds, likewise),
   * `skipped: the body carries the token` (stage body-swap put the refused token in it),
   * `skipped: renewed within renew_floor` (a 401 renewed the grant's token less than its
   * renew_floor ago: no token call, the 401 went to the client).
   */
  replay?: string | undefined;
  /** The request was replayed once with a refreshed token after a 401. */
  replayed?: boolean | undefined;
  /**
   * For `deny` and `error`: keyway's own one-line reason and what to do about it, as the agent was
   * told (ProxyError message and hint). Text keyway writes from names it knows (hosts, grant and
   * agent ids, rule names, normalised paths): never a header value, token or query string.
   */
  message?: string | undefined;
  hint?: string | undefined;
  /** For `admin`: what the operator did (`reload`). */
  action?: string | undefined;
  /** For `admin`: the config keys a reload changed (`grants.github,proxy.hosts`), or the fields a write changed: names, never values. */
  changed?: string | undefined;
  /**
   * For `admin`: who made the change. The command line: KEYWAY_ACTOR, else OS user@host; the admin
   * API: `token` (the admin token) or `session` (a dashboard sign-in); a reload by signal: the signal.
   */
  actor?: string | undefined;
  /**
   * Where the injected credential came from: `store`, `env`, `file` (the config's references), `cmd`
   * (a command the config names), or a minted credential's type. Never the value or the reference.
   */
  secret_source?: string | undefined;
  /**
   * A grant with inject: {body: true}: what the body swap did (credentials/body-swap: swapped, none,
   * not_parsed, too_large, no_memory, other_type). On a WebSocket, over its client messages: the
   * most telling outcome (too_large, then not_parsed, no_memory, swapped, none), with `body_swaps`
   * the number of messages swapped.
   */
  body_swap?: 'swapped' | 'none' | 'not_parsed' | 'too_large' | 'no_memory' | 'other_type' | undefined;
  body_swaps?: number | undefined;
  /** login_capture: the answer fields swapped for placeholders (the real values sealed in the store). */
  captured?: string[] | undefined;
  /** login_capture: a refresh with a refresh token already exchanged got that exchange's answer again, from keyway. */
  captured_again?: boolean | undefined;
  /** Whose behalf the credential acts on (a token exchange's subject), where its type knows. */
  on_behalf_of?: string | undefined;
  /** How the request was signed, as its type names it (sigv4, hmac, http_signature, dpop); an aws_sigv4 grant's region and service. */
  signed?: string | undefined;
  region?: string | undefined;
  service?: string | undefined;
  /** The role an aws_sigv4 grant signed as (assume_role): its ARN, never a key. */
  role?: string | undefined;
  /**
   * A request a rule sent to a person (approve: human), on its own line and on the approval's lines
   * (decision `approval`): the approval's id, who answered (`session`, `token`, the CLI's
   * user@host), and the outcome (pending, approved_once, approved_window, denied, expired,
   * withdrawn, interrupted on approval lines; once, window, required, denied, expired on the request's).
   */
  approval?: { id: string; outcome: string; by?: string } | undefined;
  /**
   * On a grant's MCP endpoint (grants.ID.mcp): the JSON-RPC method (a batch's, comma-separated;
   * GET and DELETE for the event stream and the session's end), the first tools/call's tool and the
   * SHA-256 of its arguments as canonical JSON (never their values), tools/call count in a batch,
   * and how many tools a tools/list answer lost to the agent's rules.
   */
  mcp?: { method: string; tool?: string | undefined; args_sha256?: string | undefined; calls?: number | undefined; hidden?: number | undefined } | undefined;
  /** For rate_limited and quota_exhausted from `limits:`: whose limit refused it (agent, grant, agent_grant). */
  limit?: 'agent' | 'grant' | 'agent_grant' | undefined;
  /**
   * A metered model answer (issue 63): what the model said it used (spend/core/usage.ts for the counts'
   * meaning). `partial`: the answer stopped early and this is what was delivered. `estimated`: the
   * answer said nothing of its usage and a budget applied: its bytes counted as tokens. `unknown`:
   * the answer said nothing of its usage (or could not be read) and no budget applied: counted,
   * flagged, never priced.
   */
  usage?:
    | {
        model: string | null;
        input_tokens: number;
        output_tokens: number;
        cached_input_tokens?: number;
        cache_write_tokens?: number;
        estimated?: true;
        partial?: true;
      }
    | { model: string | null; unknown: true }
    | undefined;
  /**
   * The usage priced at the configured prices (USD); absent when the model has no price (then
   * `unpriced: true`) and no budget in dollars applied. Under one, a model with no price is priced
   * at the fallback (spend/core/pricing.ts fallbackPrice): `price: "fallback"` and `unpriced: true`.
   */
  cost_usd?: number | undefined;
  price?: 'fallback' | undefined;
  unpriced?: true | undefined;
  /**
   * Unusual use the agent's own history shows (config anomaly:, src/anomaly/): each signal's name
   * and why (`first_use`, `new_host`, `new_method`, `burst`, `off_hours`). Under `alert` the request
   * went on marked; under `hold` it waited for a person (its `approval` says what they said).
   */
  signal?: Array<{ name: string; why: string }> | undefined;
  /** A model budget's name (`budgets[0]`) that refused or held this request, or was passed its warn_at. */
  budget?: string | undefined;
  /** The identity an agent proved with an identity token (config identities:): its issuer and subject. */
  identity?: { iss: string; sub: string } | undefined;
  /** A delegated agent's chain (keyway agents delegate): root first, the agent itself last. Only for a delegated agent. */
  chain?: string[] | undefined;
  /** What the agent said the request is for (X-Keyway-Purpose): cleaned, bounded, a secret in it redacted. */
  purpose?: string | undefined;
  /** Which keyway wrote the line, when several replicas share one store (audit.replica). */
  replica?: string | undefined;
  /** A path over 1 KiB is recorded cut (bound.ts): the SHA-256 (hex) of the whole path, and true. */
  path_sha256?: string | undefined;
  path_truncated?: boolean | undefined;
  /** Other agent-controlled fields that were cut to their bound (bound.ts), comma-separated. */
  truncated?: string | undefined;
  /**
   * A summary line (refusal-budget.ts): this many identical refusals past the budget, counted
   * instead of written one by one, the first and last of them at these times (ISO 8601).
   */
  repeated?: number | undefined;
  first?: string | undefined;
  last?: string | undefined;
  /** A summary of refusals past every budget, whatever their agent, client, host or method. */
  overflow?: boolean | undefined;
  /**
   * `sent`: the write-ahead line of a request whose credential is about to leave keyway, in the log
   * before it does (proxy/stages/audit-write-ahead.ts). Its outcome follows in a second line with
   * the same `id` and no `phase`; a `sent` line with no outcome line is a request keyway was
   * stopped (killed, crashed) while serving.
   */
  phase?: 'sent' | undefined;
  /**
   * keyway's own line (`action: audit.recover`) in the place of a torn last line, left by a crash
   * mid-append: the bytes were kept aside in `file` (beside the log), and were `bytes` long at
   * `offset` (where this line starts) with this SHA-256 (file/torn-tail.ts).
   */
  recovered?: { file: string; offset: number; bytes: number; sha256: string } | undefined;
}

/** An event as it sits in the log: chained to the line before it. */
export type AuditLine = AuditEvent & { seq: number; prev: string; hash: string };
