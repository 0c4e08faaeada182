import { describe, expect, it } from 'vitest';
import {
  ADMIN_STATUS_BY_CODE,
  AdminError,
  auditDecisionOf,
  ERROR_CODES,
  keepsConnection,
  ProxyError,
  STATUS_BY_CODE,
  type AdminCode,
  type ErrorCode,
  type ProxyErrorCode,
} from '../../src/errors/index.ts';

describe('ProxyError', () => {
  it('maps each code to its documented status and never serialises the cause', () => {
    const err = new ProxyError('upstream_unreachable', 'TLS failure to api.example.test:443', {
      grant: 'github',
      cause: new Error('secret-canary-in-cause'),
    });
    expect(err.status).toBe(502);
    expect(STATUS_BY_CODE.proxy_auth_required).toBe(407);
    const body = JSON.parse(err.toBody());
    expect(body).toEqual({
      error: { code: 'upstream_unreachable', message: 'TLS failure to api.example.test:443', grant: 'github', hint: null },
    });
    expect(err.toBody()).not.toContain('secret-canary');
  });
});

describe('the one error table', () => {
  // The product contract's table of errors keyway itself returns, copied here so a change to either shows.
  const PRODUCT_TABLE: Record<string, number> = {
    proxy_auth_required: 407,
    host_not_allowed: 403,
    policy_denied: 403,
    lease_expired: 403,
    insecure_upstream: 403,
    host_mismatch: 400,
    grant_ambiguous: 400,
    grant_needs_reconnect: 401,
    token_refresh_failed: 502,
    upstream_unreachable: 502,
    upstream_timeout: 504,
    audit_unavailable: 503,
    bad_request: 400,
    // The contract's later error table: 429 with Retry-After; a grant with no secret yet.
    rate_limited: 429,
    quota_exhausted: 429,
    budget_exceeded: 429,
    budget_unmeterable: 429,
    purpose_required: 400,
    grant_no_secret: 401,
  };

  it('keeps every code and status the product contract lists', () => {
    for (const [code, status] of Object.entries(PRODUCT_TABLE)) {
      expect(ERROR_CODES[code as ErrorCode]?.status, code).toBe(status);
      expect(new ProxyError(code as ProxyErrorCode, 'x').status, code).toBe(status);
    }
  });

  it('records refusals as deny and failures as error in the audit line', () => {
    const deny = [
      'proxy_auth_required',
      'host_not_allowed',
      'policy_denied',
      'lease_expired',
      'insecure_upstream',
      'host_mismatch',
      'grant_ambiguous',
      'purpose_required',
      'signature_unsupported',
      'mcp_unreadable',
      'no_destination',
      'body_too_large',
      'bad_request',
      'request_timeout',
      'rate_limited',
      'quota_exhausted',
      'budget_exceeded',
      'budget_unmeterable',
      'approval_required',
      'approval_denied',
      'approval_expired',
      'capture_unlisted',
      'capture_unreadable',
      'placeholder_refused',
      'rule_denied',
      // A child wider than its parent, refused at minting.
      'delegation_refused',
      // A parent minting through the door past its mint limit.
      'delegation_limited',
    ];
    for (const code of Object.keys(STATUS_BY_CODE) as ProxyErrorCode[]) {
      expect(auditDecisionOf(code), code).toBe(deny.includes(code) ? 'deny' : 'error');
    }
  });

  it('keeps the connection on exactly the 429 refusals (their client comes back and must read the answer)', () => {
    for (const code of Object.keys(STATUS_BY_CODE) as ProxyErrorCode[]) expect(keepsConnection(code), code).toBe(STATUS_BY_CODE[code] === 429);
  });

  it('gives every code with a status an audit decision, and none to the codes that never reach an agent', () => {
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      // An operator's refused change (a reload) is audited as admin, and never reaches an agent.
      if (entry.audit === 'admin') {
        expect(entry.status, code).toBeNull();
        continue;
      }
      expect(entry.status === null, code).toBe(entry.audit === null);
      if (entry.kind === 'refusal') expect(entry.status, code).not.toBeNull();
    }
  });
});

describe('the admin API in the same table', () => {
  it('answers each of its codes with the status the table gives it, and every command code has one', () => {
    const expected: Record<string, number> = {
      bad_request: 400,
      not_found: 404,
      conflict: 409,
      usage: 400,
      config_invalid: 422,
      store_locked: 503,
      internal_error: 500,
      host_not_allowed: 403,
      grant_needs_reconnect: 409,
      grant_no_secret: 409,
      token_refresh_failed: 502,
      admin_auth_required: 401,
      admin_auth_failed: 401,
      sign_in_limited: 429,
      csrf_required: 403,
      method_not_allowed: 405,
      unsupported_media_type: 415,
      body_too_large: 413,
      shutting_down: 503,
      too_many_streams: 429,
      too_many_flows: 429,
    };
    for (const [code, status] of Object.entries(expected)) {
      expect(new AdminError(code as AdminCode, 'x').status, code).toBe(status);
    }
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      if (entry.kind === 'command') expect(ADMIN_STATUS_BY_CODE[code as AdminCode], code).toBeTypeOf('number');
      // An admin-only code never reaches an agent, and its audit line is a write's (decision admin).
      if (entry.kind === 'admin') expect([entry.status, entry.audit], code).toEqual([null, 'admin']);
    }
  });
});
