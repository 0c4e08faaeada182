// Every code keyway reports, in one table. For each: the HTTP status an agent gets with it (null:
// it never reaches an agent), how the request's audit line records it (`deny`: keyway refused the
// request; `error`: something failed; `admin`: an operator's change was refused), and its kind:
// - refusal: an answer to an agent, `{"error":{code,…}}` plus X-Keyway-Error (the README's
//   "Errors the proxy returns": those codes and statuses are the contract, keep them as they are);
// - command: stops a command or a start, one line on stderr (KeywayError);
// - note: written in an audit line's `code`, never thrown (a client hung up; keyway's self check);
// - admin: an answer of the admin API only, to an operator (AdminError): `status` null, since no
//   agent ever gets it, and `audit` admin, since the router audits every write with decision admin.
// The admin API answers any code with `adminStatus` where the row has one, else with `status`; a
// row with neither never reaches it (admin/router.ts writes the answer). `keepsConnection`: a
// refusal answered on a connection left open even when the request's body was not read (Node reads
// the rest and drops it): a 429 whose client is told to come back, and which must read the answer
// whole (closing with the body still coming would reset it away); every other refusal taken before
// its body was read closes the HTTP/1.1 connection (proxy/driver/exchange.ts).

type Entry = {
  readonly kind: 'refusal' | 'command' | 'note' | 'admin';
  readonly status: number | null;
  readonly audit: 'deny' | 'error' | 'admin' | null;
  readonly adminStatus?: number;
  readonly keepsConnection?: true;
};

export const ERROR_CODES = {
  proxy_auth_required: { kind: 'refusal', status: 407, audit: 'deny' },
  host_not_allowed: { kind: 'refusal', status: 403, audit: 'deny' },
  // An identity token (config identities:) that keyway could not check: its issuer's keys could not
  // be fetched or read. Says nothing of the token; not counted as a failed sign-in.
  identity_unavailable: { kind: 'refusal', status: 503, audit: 'error' },
  policy_denied: { kind: 'refusal', status: 403, audit: 'deny' },
  // A Cedar policy (policy as code: <home>/policies/*.cedar, policy.files) forbids it; the message names the policy's id.
  rule_denied: { kind: 'refusal', status: 403, audit: 'deny' },
  lease_expired: { kind: 'refusal', status: 403, audit: 'deny' },
  insecure_upstream: { kind: 'refusal', status: 403, audit: 'deny' },
  host_mismatch: { kind: 'refusal', status: 400, audit: 'deny' },
  bad_request: { kind: 'refusal', status: 400, audit: 'deny' },
  grant_ambiguous: { kind: 'refusal', status: 400, audit: 'deny' },
  // A grant or rule with require_purpose, and no X-Keyway-Purpose on the request.
  purpose_required: { kind: 'refusal', status: 400, audit: 'deny' },
  // On an MCP endpoint: a body keyway would not read as the server does (a charset other than UTF-8,
  // a Content-Encoding, a byte-order mark, a type other than application/json), or Mcp-Method /
  // Mcp-Name headers that disagree with the body. Answered as a JSON-RPC error (mcp/body-reading.ts).
  mcp_unreadable: { kind: 'refusal', status: 400, audit: 'deny' },
  // A connection redirected to a transparent listener with no destination keyway can read: a TLS
  // ClientHello without a server name (a raw IP), or a plain HTTP request without one Host. Closed.
  no_destination: { kind: 'refusal', status: 400, audit: 'deny' },
  // A request shape keyway cannot re-sign (an aws_sigv4 grant): refused rather than signed wrong.
  signature_unsupported: { kind: 'refusal', status: 400, audit: 'deny' },
  // A request head that did not finish within proxy.timeouts.headers.
  request_timeout: { kind: 'refusal', status: 408, audit: 'deny' },
  // With Retry-After: proxy authentication failed too many times in a row from one client address
  // (proxy/identify/throttle.ts), or an agent past its share of keyway (proxy.max_in_flight_per_agent);
  // also an agent's or grant's rate (config limits.rate).
  rate_limited: { kind: 'refusal', status: 429, audit: 'deny', keepsConnection: true },
  // A rule with approve: human: wait: 0 and no yes yet (the body's `approval` names the approval to
  // answer); a person said no; nobody answered within the wait (or keyway stopped meanwhile).
  approval_required: { kind: 'refusal', status: 403, audit: 'deny' },
  approval_denied: { kind: 'refusal', status: 403, audit: 'deny' },
  approval_expired: { kind: 'refusal', status: 403, audit: 'deny' },
  // An agent's or grant's request quota for the UTC day is used up (config limits.quota); Retry-After: until the next day.
  quota_exhausted: { kind: 'refusal', status: 429, audit: 'deny', keepsConnection: true },
  // A model budget (config budgets:) is used up for its period: nothing went upstream; the hint says when it resets.
  budget_exceeded: { kind: 'refusal', status: 429, audit: 'deny', keepsConnection: true },
  // A request on a model host that keyway cannot meter while a model budget applies to it (a route
  // no meter reads, gRPC, an answer reshaped or sent later, a body it cannot read): refused, since it
  // would spend uncounted; the message names why. No Retry-After: the same request is never meterable.
  budget_unmeterable: { kind: 'refusal', status: 429, audit: 'deny', keepsConnection: true },
  // 409 on the admin API: a 401 there would read as "your admin token is wrong".
  grant_needs_reconnect: { kind: 'refusal', status: 401, audit: 'error', adminStatus: 409 },
  // The grant has no secret yet (added without one, or blank): the fix is `keyway secrets set`, not a
  // reconnect. 409 on the admin API for the same reason as grant_needs_reconnect.
  grant_no_secret: { kind: 'refusal', status: 401, audit: 'error', adminStatus: 409 },
  token_refresh_failed: { kind: 'refusal', status: 502, audit: 'error' },
  // A grant's secret command (secret: {cmd: …} in the config) failed, hung or printed nothing; the
  // value it printed before is never used past its cache.
  secret_unavailable: { kind: 'refusal', status: 502, audit: 'error' },
  // login_capture: a login host answered with a token keyway does not capture: at a watched
  // endpoint, anything credential-shaped the grant neither captures nor passes (a header, a cookie,
  // a member at any depth, a trailer); elsewhere on the host, the same in the head, and a token by
  // its name in the body (an HTML page's fields too). Nothing of the
  // answer reaches the agent; the message names the fields, never a value.
  capture_unlisted: { kind: 'refusal', status: 502, audit: 'deny' },
  // login_capture: a login host's answer keyway cannot read whole for tokens (a type it does not
  // read, a charset other than UTF-8, a Content-Encoding, over capture.max_body, JSON nested too
  // deep or naming a member twice, a Location it cannot parse): refused, never passed unread.
  capture_unreadable: { kind: 'refusal', status: 502, audit: 'deny' },
  // A captured token's placeholder on a request it does not resolve on: another host than its
  // grant's, another grant's request, another agent's, or one keyway no longer holds (dropped).
  placeholder_refused: { kind: 'refusal', status: 403, audit: 'deny' },
  // A jwt grant's token is past its exp: never sent; the fix is a new token (keyway secrets set).
  token_expired: { kind: 'refusal', status: 401, audit: 'error', adminStatus: 409 },
  upstream_unreachable: { kind: 'refusal', status: 502, audit: 'error' },
  upstream_timeout: { kind: 'refusal', status: 504, audit: 'error' },
  audit_unavailable: { kind: 'refusal', status: 503, audit: 'error' },
  internal_error: { kind: 'refusal', status: 500, audit: 'error' },
  // A command's "no such grant/agent", the admin API's unknown route or id, and the self-check
  // host's answer to any other path.
  not_found: { kind: 'command', status: 404, audit: 'error' },
  // Minting a child agent (keyway agents delegate) that would be wider than its parent: a grant the
  // parent lacks, a TTL past the parent's lease or expiry, a depth past the limit. Names what is
  // wider; nothing is written (src/delegation/). 403: a parent minting for itself will get it too.
  delegation_refused: { kind: 'command', status: 403, audit: 'deny' },
  // A parent minting through keyway's door (POST https://keyway.internal/delegate) past its mints per
  // minute or its live children (delegation/mint-limit.ts), with Retry-After; nothing is written.
  delegation_limited: { kind: 'command', status: 429, audit: 'deny', keepsConnection: true },
  // Also the code of a refused reload's audit line (decision admin): the running config stays.
  config_invalid: { kind: 'command', status: null, audit: 'admin', adminStatus: 422 },
  store_wrong_key: { kind: 'command', status: null, audit: null, adminStatus: 500 },
  store_corrupt: { kind: 'command', status: null, audit: null, adminStatus: 500 },
  store_locked: { kind: 'command', status: null, audit: null, adminStatus: 503 },
  // Never fresh over history: the store file is gone while the home's audit log, head or key file
  // say it existed; or the master key is gone beside a store. Nothing is written (home-history.ts).
  store_missing: { kind: 'command', status: null, audit: null, adminStatus: 500 },
  key_missing: { kind: 'command', status: null, audit: null, adminStatus: 500 },
  // store.backend postgres: the database cannot be reached or refused us (not the key: store_wrong_key).
  // adminStatus 400 here and on the next four: what the admin API has always answered them with.
  store_unavailable: { kind: 'command', status: null, audit: null, adminStatus: 400 },
  master_key_invalid: { kind: 'command', status: null, audit: null, adminStatus: 400 },
  ca_invalid: { kind: 'command', status: null, audit: null, adminStatus: 400 },
  audit_invalid: { kind: 'command', status: null, audit: null, adminStatus: 400 },
  listen_failed: { kind: 'command', status: null, audit: null, adminStatus: 400 },
  usage: { kind: 'command', status: null, audit: null, adminStatus: 400 },
  conflict: { kind: 'command', status: null, audit: null, adminStatus: 409 },
  // keyway run --contain cannot make its namespaces here (not Linux, a program missing, no user
  // namespaces for this user): the command is not run (exit 2), never run uncontained.
  contain_unavailable: { kind: 'command', status: null, audit: null, adminStatus: 400 },
  // keyway run --contain: the working folder or an option would defeat containment (/, a folder
  // holding keyway's home, inside a .git, a link at a hidden path that leads nowhere): named, exit 2.
  contain_refused: { kind: 'command', status: null, audit: null, adminStatus: 400 },
  // keyway service install/uninstall: a system step (useradd, systemctl, keyway init as the service user) failed; named.
  service_failed: { kind: 'command', status: null, audit: null, adminStatus: 500 },
  client_closed: { kind: 'note', status: null, audit: null },
  // An intercepted client ended keyway's TLS handshake with an alert (unknown CA, bad certificate):
  // it does not trust keyway's CA, and would otherwise leave no trace (refusal-budgeted, decision deny).
  client_tls_failed: { kind: 'note', status: null, audit: null },
  self_check: { kind: 'note', status: null, audit: null },
  // No admin token (or a wrong one) on a route that needs it, and no dashboard session.
  admin_auth_required: { kind: 'admin', status: null, audit: 'admin', adminStatus: 401 },
  // POST /api/session with a wrong token.
  admin_auth_failed: { kind: 'admin', status: null, audit: 'admin', adminStatus: 401 },
  // Too many wrong tokens from one address (admin/sign-in-limit.ts).
  sign_in_limited: { kind: 'admin', status: null, audit: 'admin', adminStatus: 429 },
  // A dashboard session's call without its X-Keyway-CSRF header.
  csrf_required: { kind: 'admin', status: null, audit: 'admin', adminStatus: 403 },
  method_not_allowed: { kind: 'admin', status: null, audit: 'admin', adminStatus: 405 },
  unsupported_media_type: { kind: 'admin', status: null, audit: 'admin', adminStatus: 415 },
  // The admin API's body limit; and a body keyway must hash to sign it, over the grant's max_signed_body.
  body_too_large: { kind: 'refusal', status: 413, audit: 'deny', adminStatus: 413 },
  // keyway is stopping: no new audit stream or device flow.
  shutting_down: { kind: 'admin', status: null, audit: 'admin', adminStatus: 503 },
  too_many_streams: { kind: 'admin', status: null, audit: 'admin', adminStatus: 429 },
  too_many_flows: { kind: 'admin', status: null, audit: 'admin', adminStatus: 429 },
} as const satisfies Record<string, Entry>;

type Table = typeof ERROR_CODES;

/** The one code union. */
export type ErrorCode = keyof Table;
/** Codes an agent can get over HTTP: those with a status. */
export type ProxyErrorCode = { [C in ErrorCode]: Table[C]['status'] extends number ? C : never }[ErrorCode];
/** Codes that stop a command or a start. */
export type KeywayErrorCode = { [C in ErrorCode]: Table[C]['kind'] extends 'command' ? C : never }[ErrorCode];
/** Codes the admin API answers with: those with an adminStatus or a status. */
export type AdminCode = { [C in ErrorCode]: Table[C] extends { adminStatus: number } ? C : Table[C]['status'] extends number ? C : never }[ErrorCode];
/** Codes an audit line's `code` may hold (an admin write's line holds its answer's code). */
export type AuditCode =
  | ProxyErrorCode
  | AdminCode
  | { [C in ErrorCode]: Table[C]['kind'] extends 'note' ? C : never }[ErrorCode]
  | { [C in ErrorCode]: Table[C]['audit'] extends 'admin' ? C : never }[ErrorCode];

/** The HTTP status for each code an agent can get. */
export const STATUS_BY_CODE = Object.freeze(
  Object.fromEntries(Object.entries(ERROR_CODES).flatMap(([code, e]) => (e.status === null ? [] : [[code, e.status]]))),
) as { readonly [C in ProxyErrorCode]: Table[C]['status'] };

/** The admin API's HTTP status for each code it answers with. */
export const ADMIN_STATUS_BY_CODE = Object.freeze(
  Object.fromEntries(
    Object.entries(ERROR_CODES as Record<ErrorCode, Entry>).flatMap(([code, e]) => {
      const status = e.adminStatus ?? e.status;
      return status === null ? [] : [[code, status]];
    }),
  ),
) as { readonly [C in AdminCode]: number };

/** Whether a refusal with this code leaves an HTTP/1.1 connection open though the body was not read (see the table's head). */
export function keepsConnection(code: ProxyErrorCode): boolean {
  return (ERROR_CODES[code] as Entry).keepsConnection === true;
}

/** How a request's audit line records a refusal with this code. */
export function auditDecisionOf(code: ProxyErrorCode): 'deny' | 'error' {
  return ERROR_CODES[code].audit;
}
