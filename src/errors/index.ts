// Every error keyway reports carries a stable `code`. Codes that reach an agent over HTTP are
// listed in PRODUCT.md; the HTTP status for each lives only in STATUS_BY_CODE below.

export const STATUS_BY_CODE = {
  proxy_auth_required: 407,
  host_not_allowed: 403,
  policy_denied: 403,
  lease_expired: 403,
  insecure_upstream: 403,
  host_mismatch: 400,
  bad_request: 400,
  not_found: 404,
  grant_ambiguous: 400,
  grant_needs_reconnect: 401,
  token_refresh_failed: 502,
  upstream_unreachable: 502,
  upstream_timeout: 504,
  audit_unavailable: 503,
  internal_error: 500,
} as const;

export type ProxyErrorCode = keyof typeof STATUS_BY_CODE;

export interface ErrorDetails {
  grant?: string | undefined;
  hint?: string | undefined;
  cause?: unknown;
}

/** An error that becomes an HTTP answer to the agent: `{"error":{code,message,grant,hint}}`. */
export class ProxyError extends Error {
  readonly code: ProxyErrorCode;
  readonly grant: string | undefined;
  readonly hint: string | undefined;

  constructor(code: ProxyErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'ProxyError';
    this.code = code;
    this.grant = details.grant;
    this.hint = details.hint;
  }

  get status(): number {
    return STATUS_BY_CODE[this.code];
  }

  /** The body sent to the agent. Never includes `cause`: a foreign error may quote a secret. */
  toBody(): string {
    return JSON.stringify({
      error: { code: this.code, message: this.message, grant: this.grant ?? null, hint: this.hint ?? null },
    });
  }
}

/** Errors that stop a command or a start: shown as one line on stderr, exit non-zero. */
export type KeywayErrorCode =
  | 'config_invalid'
  | 'store_wrong_key'
  | 'store_corrupt'
  | 'store_locked'
  | 'master_key_invalid'
  | 'ca_invalid'
  | 'audit_invalid'
  | 'not_found'
  | 'usage'
  | 'conflict'
  | 'listen_failed';

export class KeywayError extends Error {
  readonly code: KeywayErrorCode;

  constructor(code: KeywayErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeywayError';
    this.code = code;
  }
}
