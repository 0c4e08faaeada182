import { describeSourced, type SourcedSecret, sourcedKey } from '../config/sourced-secret.ts';
import { type SharedValue, SharedValues } from './sources/shared-values.ts';
import { type MintedState, mintedStateId } from './issuing/minted-tokens.ts';
import type { Config } from '../config/index.ts';
import type { ModelApiHint } from '../config/spend.ts';
import { displayStatus, type DisplayStatus, loginCommand } from './grant-display.ts';
import type { RecordSource } from './store/credential-store.ts';

import { clientCertificateRecordId, GRANT_PREFIX, usageRecordId, type GrantStatus, type GrantUsage, type StoredGrant } from './grant-record.ts';
import { KINDS, kindOf, type KindFields, oauthIssuerOf, oauthMaterialOf, usableMaterial } from './types/index.ts';
import { CAPTURED_PREFIX } from '../capture/core/placeholder.ts';
import { type CapturedLogin, capturedLogins, type CapturedToken, loginUsageKey } from '../capture/core/captured.ts';
import type { SecretMaterial } from './material.ts';
import { LEASE_PREFIX, type LeaseRecord } from './lease-record.ts';
import { oauthStateId, type OAuthState } from './issuing/oauth-state.ts';
import { awsRoleStateId, type AwsRoleState } from './types/aws_sigv4/role-state.ts';
import { certificateWarning, loadClientCertificate, type ClientCertificateMaterial } from './client-certificate.ts';

/** One grant as listings show it: never a secret value, only whether one is set and when it expires. */
export interface GrantListing {
  id: string;
  type: string;
  domains: string[];
  status: string;
  /** The status at a glance (grant-display.ts): adds `expiring` and `no secret`; `status_detail` says why. */
  display_status: DisplayStatus;
  status_detail: string;
  source: 'config' | 'store';
  inject: string;
  provider: string | null;
  /** Who the grant belongs to at the provider, where keyway learnt it; null otherwise. */
  account: string | null;
  secret: 'set' | 'missing';
  /**
   * Where the secret comes from: `store`, `env:NAME`, `file:PATH`, or `cmd: PROG` for a command,
   * which names the program alone: its arguments may carry a secret (a token flag, a header), and
   * a listing reaches the admin API and the dashboard. Null: none set in the config.
   */
  secret_from: string | null;
  scopes: string[] | null;
  token_expires_at: string | null;
  last_refreshed_at: string | null;
  /** aws_sigv4 with assume_role: the role's ARN, and when the temporary credentials keyway holds for it expire (never a key). */
  role: string | null;
  role_expires_at: string | null;
  /** aws_sigv4 and hmac grants in the store: the public key id the secret goes with (never the secret). */
  key_id: string | null;
  /** A client certificate the grant presents (mTLS, stored grants): its subject and notAfter (never the key). */
  client_certificate: { subject: string; expires_at: string } | null;
  client_certificate_expires_at: string | null;
  last_used_at: string | null;
  /** The upstream's last answer to the grant's credential was 401, at this time (app/usage-recorder.ts); null otherwise. */
  refused_upstream_at: string | null;
  allow_http: boolean;
  /** Range requests are passed on (weakens the leak guard); dropped by default. */
  allow_range: boolean;
  /** Every request through it must say why (X-Keyway-Purpose). */
  require_purpose: boolean;
  /** How its model answers are metered (issue 63); null: by the vendors' own hosts. */
  model_api: ModelApiHint | null;
  /** Paths that are MCP endpoints (their JSON-RPC messages judged by MCP rules); empty: none. */
  mcp_paths: string[];
  labels: Record<string, string>;
  /** The second clock: each agent's lease on this grant (agents with a lease_ttl only). */
  leases: Array<{ agent: string; state: 'active' | 'expired' | 'revoked'; expires_at: string }>;
  /**
   * A login_capture grant: each login captured, by agent: the fields held, when the access token
   * expires, when it was captured and last used (never a value, never a placeholder). Null for any other type.
   */
  captured: Array<CapturedLogin & { last_used_at: string | null }> | null;
}

type GrantFacts = Omit<GrantListing, 'display_status' | 'status_detail'> & {
  usable: boolean;
  expiresAt: number | undefined;
  renewable: boolean;
  /** The client certificate is expired, unusable or expires within 14 days (said in the status). */
  certificateWarning: { expired: boolean; line: string } | undefined;
  /** A login_capture grant: what fills it while no login is captured (grant-display.ts). */
  login: string | undefined;
};

/** `services` is what openServices returns (open-home.ts), or anything with a config and the store's reads. */
export function listGrants(services: { config: Config; store: RecordSource }): GrantListing[] {
  const { config, store } = services;
  const lastUsed = (id: string) => store.get<GrantUsage>(usageRecordId(id))?.last_used_at ?? null;
  const refusedAt = (id: string) => store.get<GrantUsage>(usageRecordId(id))?.refused_at ?? null;
  const now = Date.now();
  const leasesOf = (id: string) =>
    store
      .entries<LeaseRecord>(LEASE_PREFIX)
      .filter(([, l]) => l.grant === id)
      .map(([, l]) => ({
        agent: l.agent,
        state: l.revoked_at !== undefined ? ('revoked' as const) : Date.parse(l.expires_at) > now ? ('active' as const) : ('expired' as const),
        expires_at: l.expires_at,
      }));
  const describe = (type: StoredGrant['type'], inject: StoredGrant['inject'], fields: KindFields & { readonly type: StoredGrant['type'] }) => {
    try {
      const kind = kindOf(type);
      const injector = kind.wire.injector(inject);
      const described = kind.describe?.(fields, injector) ?? injector.describe();
      // Body swap beside a header or query injection: both are said.
      return inject?.body && !described.startsWith('body:') ? `${described}; body: keyway-placeholder-<grant id> replaced by the secret` : described;
    } catch (err) {
      return `invalid: ${(err as Error).message}`;
    }
  };
  // The token clock: the live state a refresh left, else what the user stored. Never a token value.
  const tokenFacts = (id: string, type: StoredGrant['type'], base: GrantStatus, material: SecretMaterial | undefined) => {
    const live = store.get<OAuthState>(oauthStateId(id));
    const m = oauthMaterialOf(type, material);
    // A jwt grant's clock is its token's exp; a service account's, the token it minted last.
    const minted = KINDS[type].issuer.by === 'minted' ? store.get<MintedState>(mintedStateId(id)) : undefined;
    const expiresAt =
      KINDS[type].expiresAt !== undefined
        ? material === undefined
          ? undefined
          : KINDS[type].expiresAt(material)
        : minted
          ? minted.expiresAt
          : live
            ? live.expiresAt
            : m?.expiresAt;
    const refreshToken = live?.refreshToken ?? (m && 'refreshToken' in m ? m.refreshToken : undefined);
    return {
      status: base !== 'active' ? base : (live?.status ?? base),
      scopes: live?.scopes ?? m?.scopes ?? null,
      token_expires_at: typeof expiresAt === 'number' ? new Date(expiresAt).toISOString() : null,
      last_refreshed_at: minted?.mintedAt ?? live?.refreshedAt ?? null,
      expiresAt: typeof expiresAt === 'number' ? expiresAt : undefined,
      renewable: oauthIssuerOf(type)?.clientOnly === true || refreshToken !== undefined,
      // Tokens a refresh left count as a secret in force, whatever the stored material says.
      liveToken: live?.accessToken !== undefined,
    };
  };
  // The role's clock: the temporary credentials a refresh left for this role, if any.
  const roleFacts = (id: string, roleArn: string | undefined, token: { last_refreshed_at: string | null }) => {
    const live = roleArn === undefined ? undefined : store.get<AwsRoleState>(awsRoleStateId(id));
    const held = live?.roleArn === roleArn ? live : undefined;
    return {
      role: roleArn ?? null,
      role_expires_at: held ? new Date(held.expiresAt).toISOString() : null,
      last_refreshed_at: held?.refreshedAt ?? token.last_refreshed_at,
    };
  };
  // Captured logins (login_capture grants): read once, grouped per grant.
  let capturedRecords: Array<[string, CapturedToken]> | undefined;
  const capturedOf = (id: string, type: StoredGrant['type']) => {
    if (type !== 'login_capture') return null;
    capturedRecords ??= store.entries<CapturedToken>(CAPTURED_PREFIX);
    return capturedLogins(capturedRecords, id).map((login) => ({ ...login, last_used_at: lastUsed(loginUsageKey(id, login.agent, login.login)) }));
  };
  const facts: GrantFacts[] = Object.entries(config.grants).map(([id, g]) => {
    const { liveToken, ...token } = tokenFacts(id, g.type, 'active', undefined);
    const captured = capturedOf(id, g.type);
    return {
      id,
      type: g.type,
      domains: g.domains.map((d) => d.text),
      source: 'config',
      inject: describe(g.type, g.inject, g),
      provider: g.provider ?? null,
      account: null,
      // A config grant's secret is a reference, not read to list it.
      key_id: null,
      client_certificate: null,
      client_certificate_expires_at: null,
      certificateWarning: undefined,
      secret: g.secret || (KINDS[g.type].wire.by === 'connection' && g.client_certificate) ? 'set' : 'missing',
      secret_from: captured === null ? secretFrom(g.secret) : 'capture',
      ...token,
      ...roleFacts(id, g.type === 'aws_sigv4' ? g.assume_role?.role_arn : undefined, token),
      // A secret source's item: when the value the proxy uses was last fetched (the store keeps it).
      ...(g.secret?.kind === 'source' ? { last_refreshed_at: sourceFetchedAt(store, g.secret) } : {}),
      // A capture grant needs no secret: its agents' logins give it theirs, once one is captured.
      usable: g.secret !== undefined || (KINDS[g.type].wire.by === 'connection' && g.client_certificate !== undefined) || liveToken || hasLogin(captured),
      login: loginOf(id, g.type, {}, g),
      last_used_at: lastUsed(id),
      refused_upstream_at: refusedAt(id),
      allow_http: g.allow_http,
      allow_range: g.allow_range,
      require_purpose: g.require_purpose,
      model_api: g.model_api ?? null,
      mcp_paths: [...(g.mcp?.paths ?? [])],
      labels: {},
      leases: leasesOf(id),
      captured,
    };
  });
  for (const [, g] of store.entries<StoredGrant>(GRANT_PREFIX)) {
    if (config.grants[g.id]) continue;
    const { liveToken, ...token } = tokenFacts(g.id, g.type, g.status, g.secret);
    const captured = capturedOf(g.id, g.type);
    facts.push({
      id: g.id,
      type: g.type,
      domains: g.domains,
      source: 'store',
      inject: describe(g.type, g.inject, g),
      provider: g.provider ?? null,
      account: g.account ?? null,
      key_id: keyIdOf(g.secret),
      ...certificateFacts(KINDS[g.type].wire.by === 'connection' ? g.secret : store.get<ClientCertificateMaterial>(clientCertificateRecordId(g.id)), now),
      secret: g.secret === undefined ? 'missing' : 'set',
      secret_from: 'store',
      ...token,
      ...roleFacts(g.id, g.type === 'aws_sigv4' ? (g['assume_role'] as { role_arn?: string } | undefined)?.role_arn : undefined, token),
      usable: usableMaterial(g.type, g.secret) || liveToken || hasLogin(captured),
      login: loginOf(g.id, g.type, g.labels, g),
      last_used_at: lastUsed(g.id),
      refused_upstream_at: refusedAt(g.id),
      allow_http: g.allow_http ?? false,
      allow_range: g.allow_range ?? false,
      require_purpose: g.require_purpose ?? false,
      model_api: g.model_api ?? null,
      mcp_paths: [...(g.mcp?.paths ?? [])],
      labels: { ...g.labels },
      leases: leasesOf(g.id),
      captured,
    });
  }
  return facts
    .map(({ usable, expiresAt, renewable, certificateWarning, login, ...row }) => {
      const shown = displayStatus({ status: row.status, usable, tokenExpiresAt: expiresAt, renewable, leases: row.leases, login }, now);
      // The certificate's clock, when it says more than the token's: expired (or unusable) stops every request.
      if (certificateWarning && usable && (shown.display_status === 'active' || certificateWarning.expired)) {
        return {
          ...row,
          display_status: certificateWarning.expired ? ('needs_reconnect' as const) : ('expiring' as const),
          status_detail: certificateWarning.line,
        };
      }
      return { ...row, ...shown };
    })
    .sort((a, b) => a.id.localeCompare(b.id));
}

/** At least one login is captured for the grant (a login_capture grant's only secret). */
function hasLogin(captured: readonly unknown[] | null): boolean {
  return captured !== null && captured.length > 0;
}

/** What fills a login_capture grant with no login, for its status; undefined for any other type. */
function loginOf(id: string, type: string, labels: Readonly<Record<string, string>> | undefined, grant: object): string | undefined {
  return type === 'login_capture' ? loginCommand({ id, labels, agent: (grant as { agent?: unknown }).agent }) : undefined;
}

/** The public half of a signing key: an AWS access key id, an HMAC key id. */
function keyIdOf(material: SecretMaterial | undefined): string | null {
  if (!material || typeof material !== 'object') return null;
  if ('accessKeyId' in material && typeof material.accessKeyId === 'string') return material.accessKeyId;
  if ('keyId' in material && typeof material.keyId === 'string') return material.keyId;
  return null;
}

function sourceFetchedAt(store: RecordSource, item: SourcedSecret): string | null {
  const saved = store.get<SharedValue>(SharedValues.idOf(sourcedKey(item)));
  return saved === undefined ? null : new Date(saved.fetched_at).toISOString();
}

/** A config grant's secret reference as listings show it (never a command's arguments). */
function secretFrom(ref: Config['grants'][string]['secret']): string | null {
  if (ref === undefined) return null;
  if (ref.kind === 'env') return `env:${ref.name}`;
  if (ref.kind === 'file') return `file:${ref.path}`;
  if (ref.kind === 'source') return describeSourced(ref);
  return `cmd: ${ref.argv[0]}`;
}

/** What listings show of a grant's client certificate: subject and expiry, and a warning 14 days ahead. */
function certificateFacts(
  material: SecretMaterial | undefined,
  now: number,
): Pick<GrantFacts, 'client_certificate' | 'client_certificate_expires_at' | 'certificateWarning'> {
  if (!material || typeof material !== 'object' || !('certificate' in material)) {
    return { client_certificate: null, client_certificate_expires_at: null, certificateWarning: undefined };
  }
  const cert = loadClientCertificate(material, 'client certificate');
  const line = certificateWarning(cert, now);
  const warning = line === undefined ? undefined : { expired: !cert.ok || cert.notAfter <= now, line };
  if (!cert.ok) return { client_certificate: null, client_certificate_expires_at: null, certificateWarning: warning };
  const expires = new Date(cert.notAfter).toISOString();
  return { client_certificate: { subject: cert.subject, expires_at: expires }, client_certificate_expires_at: expires, certificateWarning: warning };
}
