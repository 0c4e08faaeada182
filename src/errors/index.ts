// Every error keyway reports carries a stable `code` from the one table in codes.ts, which also
// holds each code's HTTP status and audit decision. Three classes share it: ProxyError answers an
// agent over HTTP, AdminError an operator on the admin API, KeywayError stops a command or a start.
// Foreign errors are wrapped with `cause`.

import { ADMIN_STATUS_BY_CODE, STATUS_BY_CODE, type AdminCode, type KeywayErrorCode, type ProxyErrorCode } from './codes.ts';

export { ADMIN_STATUS_BY_CODE, auditDecisionOf, ERROR_CODES, keepsConnection, STATUS_BY_CODE } from './codes.ts';
export type { AdminCode, AuditCode, ErrorCode, KeywayErrorCode, ProxyErrorCode } from './codes.ts';

export interface ErrorDetails {
  grant?: string | undefined;
  hint?: string | undefined;
  cause?: unknown;
  /** Seconds the client should wait before trying again (the Retry-After header): with a 429. */
  retryAfter?: number | undefined;
  /** An approval_* refusal: the approval it is about, sent beside `error` (`{"approval":{id,…}}`). */
  approval?: { id: string; state: string; expires_at: string } | undefined;
  /**
   * The answer in the protocol the request spoke, when that is not keyway's JSON: a refused MCP
   * tools/call is a JSON-RPC error with the request's id (src/mcp/rpc-errors.ts), so that the client
   * shows it to the model. The code and message still go in X-Keyway-Error and the audit line.
   */
  answer?: { status: number; body: string } | undefined;
  /** A refused identity token that was sound but mapped to no agent: the identity it proved, for the audit line. */
  identity?: { iss: string; sub: string } | undefined;
}

/** An error that becomes an HTTP answer to the agent: `{"error":{code,message,grant,hint}}`. */
export class ProxyError extends Error {
  readonly code: ProxyErrorCode;
  readonly grant: string | undefined;
  readonly hint: string | undefined;
  readonly retryAfter: number | undefined;
  readonly approval: ErrorDetails['approval'];
  readonly answer: ErrorDetails['answer'];
  readonly identity: ErrorDetails['identity'];

  constructor(code: ProxyErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'ProxyError';
    this.code = code;
    this.grant = details.grant;
    this.hint = details.hint;
    this.retryAfter = details.retryAfter;
    this.approval = details.approval;
    this.answer = details.answer;
    this.identity = details.identity;
  }

  get status(): number {
    return STATUS_BY_CODE[this.code];
  }

  /** The body sent to the agent. Never includes `cause`: a foreign error may quote a secret. */
  toBody(): string {
    return JSON.stringify({
      error: { code: this.code, message: this.message, grant: this.grant ?? null, hint: this.hint ?? null },
      ...(this.approval ? { approval: this.approval } : {}),
    });
  }
}

/**
 * An error an admin route throws: answered with its code's admin status and
 * `{"error":{code,message,hint}}` (admin/router.ts). The message is keyway's own, never a foreign one.
 */
export class AdminError extends Error {
  readonly code: AdminCode;
  readonly hint: string | undefined;

  constructor(code: AdminCode, message: string, hint?: string) {
    super(message);
    this.name = 'AdminError';
    this.code = code;
    this.hint = hint;
  }

  get status(): number {
    return ADMIN_STATUS_BY_CODE[this.code];
  }
}

/** Errors that stop a command or a start: shown as one line on stderr, exit non-zero. */
export class KeywayError extends Error {
  readonly code: KeywayErrorCode;

  constructor(code: KeywayErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeywayError';
    this.code = code;
  }
}
