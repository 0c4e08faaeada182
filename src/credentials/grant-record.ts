import type { GrantType, InjectConfig } from '../config/index.ts';
import type { ModelApiHint } from '../config/spend.ts';
import type { SecretMaterial } from './material.ts';

// How a grant made with the CLI is kept in the encrypted store (record id `grant:<id>`).

export type GrantStatus = 'active' | 'needs_reconnect' | 'revoked';

export interface StoredGrant {
  id: string;
  type: GrantType;
  domains: string[];
  inject?: InjectConfig | undefined;
  allow_http?: boolean | undefined;
  allow_range?: boolean | undefined;
  require_purpose?: boolean | undefined;
  /** How its model answers are metered (issue 63): a vendor's wire format, or none. */
  model_api?: ModelApiHint | undefined;
  /** Paths that are MCP endpoints (keyway connect --mcp sets the server's), and the body bound there. */
  mcp?: { paths: string[]; max_body?: string | undefined } | undefined;
  provider?: string | undefined;
  status: GrantStatus;
  secret?: SecretMaterial | undefined;
  /** Free-form names for people and scripts (`team: payments`); never secret. */
  labels?: Record<string, string> | undefined;
  /** Who the provider says the grant belongs to (an email or subject), where a connect flow learnt it. */
  account?: string | undefined;
  created_at: string;
  updated_at: string;
  /** Its type's own keys (types/<type>/fields.ts), as the schema took them: read only by its kind. */
  [typeKey: string]: unknown;
}

/** Last use, kept apart from the grant so the proxy's periodic flush never rewrites secrets. */
export interface GrantUsage {
  last_used_at: string;
  /**
   * The upstream's last answer to the grant's credential was 401 (it refused it), when: cleared by
   * a later answer under 400. A wrong secret stored, or one revoked upstream (issue 86: the grant
   * looked "active" while every request got the vendor's 401).
   */
  refused_at?: string | undefined;
}

export const grantRecordId = (id: string): string => `grant:${id}`;
export const USAGE_PREFIX = 'usage:';
export const usageRecordId = (id: string): string => `${USAGE_PREFIX}${id}`;
export const GRANT_PREFIX = 'grant:';
/**
 * A client certificate (client-certificate.ts) for a grant of any type but mtls, whose certificate is
 * its secret: a record of its own, so that setting the grant's token again (or an OAuth refresh
 * rewriting it) leaves the certificate alone, and the other way round.
 */
export const clientCertificateRecordId = (id: string): string => `client-certificate:${id}`;
