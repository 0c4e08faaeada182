// Every code keyway reports, in one table. For each: the HTTP status an agent gets with it (null:
// it never reaches an agent), how the request's audit line records it (`deny`: keyway refused the
// request; `error`: something failed; `admin`: an operator's change was refused), and its kind:
// - refusal: an answer to an agent, `{"error":{code,…}}` plus X-Keyway-Error (PRODUCT.md, "Errors
//   keyway itself returns": those codes and statuses are the contract, keep them as they are);
// - command: stops a command or a start, one line on stderr (KeywayError);
// - note: written in an audit line's `code`, never thrown (a client hung up; keyway's self check).

type Entry = { readonly kind: 'refusal' | 'command' | 'note'; readonly status: number | null; readonly audit: 'deny' | 'error' | 'admin' | null };

export const ERROR_CODES = {
  proxy_auth_required: { kind: 'refusal', status: 407, audit: 'deny' },
  host_not_allowed: { kind: 'refusal', status: 403, audit: 'deny' },
  policy_denied: { kind: 'refusal', status: 403, audit: 'deny' },
  lease_expired: { kind: 'refusal', status: 403, audit: 'deny' },
  insecure_upstream: { kind: 'refusal', status: 403, audit: 'deny' },
  host_mismatch: { kind: 'refusal', status: 400, audit: 'deny' },
  bad_request: { kind: 'refusal', status: 400, audit: 'deny' },
  grant_ambiguous: { kind: 'refusal', status: 400, audit: 'deny' },
  // A request head that did not finish within proxy.timeouts.headers.
  request_timeout: { kind: 'refusal', status: 408, audit: 'deny' },
  // With Retry-After: proxy authentication failed too many times in a row from one client address
  // (proxy/auth-throttle.ts), or an agent past its share of keyway (proxy.max_in_flight_per_agent);
  // PRODUCT.md also names it for agent rate limits.
  rate_limited: { kind: 'refusal', status: 429, audit: 'deny' },
  grant_needs_reconnect: { kind: 'refusal', status: 401, audit: 'error' },
  token_refresh_failed: { kind: 'refusal', status: 502, audit: 'error' },
  upstream_unreachable: { kind: 'refusal', status: 502, audit: 'error' },
  upstream_timeout: { kind: 'refusal', status: 504, audit: 'error' },
  audit_unavailable: { kind: 'refusal', status: 503, audit: 'error' },
  internal_error: { kind: 'refusal', status: 500, audit: 'error' },
  // A command's "no such grant/agent", and the self-check host's answer to any other path.
  not_found: { kind: 'command', status: 404, audit: 'error' },
  // Also the code of a refused reload's audit line (decision admin): the running config stays.
  config_invalid: { kind: 'command', status: null, audit: 'admin' },
  store_wrong_key: { kind: 'command', status: null, audit: null },
  store_corrupt: { kind: 'command', status: null, audit: null },
  store_locked: { kind: 'command', status: null, audit: null },
  // store.backend postgres: the database cannot be reached or refused us (not the key: store_wrong_key).
  store_unavailable: { kind: 'command', status: null, audit: null },
  master_key_invalid: { kind: 'command', status: null, audit: null },
  ca_invalid: { kind: 'command', status: null, audit: null },
  audit_invalid: { kind: 'command', status: null, audit: null },
  usage: { kind: 'command', status: null, audit: null },
  conflict: { kind: 'command', status: null, audit: null },
  listen_failed: { kind: 'command', status: null, audit: null },
  client_closed: { kind: 'note', status: null, audit: null },
  self_check: { kind: 'note', status: null, audit: null },
} as const satisfies Record<string, Entry>;

type Table = typeof ERROR_CODES;

/** The one code union. */
export type ErrorCode = keyof Table;
/** Codes an agent can get over HTTP: those with a status. */
export type ProxyErrorCode = { [C in ErrorCode]: Table[C]['status'] extends number ? C : never }[ErrorCode];
/** Codes that stop a command or a start. */
export type KeywayErrorCode = { [C in ErrorCode]: Table[C]['kind'] extends 'command' ? C : never }[ErrorCode];
/** Codes an audit line's `code` may hold. */
export type AuditCode =
  | ProxyErrorCode
  | { [C in ErrorCode]: Table[C]['kind'] extends 'note' ? C : never }[ErrorCode]
  | { [C in ErrorCode]: Table[C]['audit'] extends 'admin' ? C : never }[ErrorCode];

/** The HTTP status for each code an agent can get. */
export const STATUS_BY_CODE = Object.freeze(
  Object.fromEntries(Object.entries(ERROR_CODES).flatMap(([code, e]) => (e.status === null ? [] : [[code, e.status]]))),
) as { readonly [C in ProxyErrorCode]: Table[C]['status'] };

/** How a request's audit line records a refusal with this code. */
export function auditDecisionOf(code: ProxyErrorCode): 'deny' | 'error' {
  return ERROR_CODES[code].audit;
}
