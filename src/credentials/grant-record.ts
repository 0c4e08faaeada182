import type { HmacSignConfig } from './types/hmac/fields/sign-schema.ts';
import type { GrantType, InjectConfig } from '../config/index.ts';
import type { SecretMaterial } from './material.ts';
import type { AssumeRoleFields } from './types/aws_sigv4/signing/config.ts';

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
  /** aws_sigv4 only (types/aws_sigv4/signing/config.ts). */
  region?: string | undefined;
  service?: string | undefined;
  regions?: string[] | undefined;
  services?: string[] | undefined;
  max_signed_body?: string | undefined;
  max_presign_expiry?: string | undefined;
  /** hmac only: the scheme (types/hmac/fields/sign-schema.ts), as parsed. */
  sign?: HmacSignConfig | undefined;
  assume_role?: AssumeRoleFields | undefined;
  /** google_service_account only: the scopes its tokens are minted for, and the user it acts as. */
  scopes?: string[] | undefined;
  subject?: string | undefined;
  /** github_app only: the API, and what each installation token is narrowed to. */
  api_url?: string | undefined;
  repositories?: string[] | undefined;
  permissions?: Record<string, 'read' | 'write' | 'admin'> | undefined;
  sts_endpoint?: string | undefined;
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
}

/** Last use, kept apart from the grant so the proxy's periodic flush never rewrites secrets. */
export interface GrantUsage {
  last_used_at: string;
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
