import type { Config, DomainPattern, GrantType, SecretCommand } from '../config/index.ts';
import { parseDomainPattern, readSecretRef } from '../config/index.ts';
import { KeywayError } from '../errors/index.ts';
import { grantPlaceholder } from './body-swap/index.ts';
import { injectorFor, type Injector } from './injectors/index.ts';
import { parseBasicSecret, parseMaterial, usableMaterial, type SecretMaterial } from './material.ts';
import { awsSigningOf, DEFAULT_MAX_SIGNED_BODY, type AwsSigning } from './signing/aws/config.ts';
import { compileHmacScheme, type HmacScheme } from './signing/hmac/index.ts';
import type { HmacSignConfig } from '../config/hmac/sign-schema.ts';
import { parseByteSize } from '../config/byte-size.ts';
import { GRANT_PREFIX, type GrantStatus, type StoredGrant } from './grant-record.ts';
import { oauthStateId, type OAuthState } from './oauth-state.ts';
import { clientCertificateRecordId } from './grant-record.ts';
import { loadClientCertificate, type ClientCertificate, type ClientCertificateMaterial } from './client-certificate.ts';
import { storedJwtExpiry } from './jwt.ts';
import { compileGlob, type PathGlob } from '../policy/glob.ts';

/** A grant as the proxy uses it: parsed patterns, a ready injector, the secret in memory. */
export interface Grant {
  readonly id: string;
  readonly type: GrantType;
  readonly domains: readonly DomainPattern[];
  readonly injector: Injector;
  readonly allowHttp: boolean;
  /** Range and If-Range are forwarded on injected requests (dropped otherwise: proxy/headers.ts). */
  readonly allowRange: boolean;
  /** Every request through it must carry X-Keyway-Purpose (proxy/stages/purpose.ts). */
  readonly requirePurpose: boolean;
  /** inject: {body: true}: keyway-placeholder-<id>, replaced in bodies and client WebSocket messages (proxy/stages/body-swap.ts). */
  readonly bodyPlaceholder?: string | undefined;
  /** inject: {body: {fields: […]}}: the only JSON members and form fields swapped in (undefined: any). */
  readonly bodyFields?: ReadonlySet<string> | undefined;
  /** aws_sigv4: how its requests are signed (proxy/stages/aws-scope.ts, body.ts). */
  readonly aws: AwsSigning | undefined;
  /** google_service_account: the scopes its tokens are minted for, and the user it acts as (providers/google-service-account.ts). */
  readonly google?: { scopes: readonly string[]; subject: string | undefined } | undefined;
  /** github_app: the API that mints its tokens (Bearer there; Basic x-access-token elsewhere, for git), and what they are narrowed to. */
  readonly github?: GitHubAppSettings | undefined;
  /** hmac: its scheme, compiled once, and the largest body it holds to hash (proxy/stages/body.ts). */
  readonly hmac: { scheme: HmacScheme; maxSignedBody: number } | undefined;
  /**
   * The client certificate presented on this grant's upstream connections (mTLS), read once here:
   * an mtls grant's secret, or the certificate another grant carries beside its secret.
   */
  readonly clientCertificate: ClientCertificate | undefined;
  /** Paths that are MCP endpoints (src/mcp/, proxy/stages/mcp.ts), and the largest body read there. */
  readonly mcp?: McpEndpoints | undefined;
  /** jwt: the token's exp (epoch ms); undefined when it has none. */
  readonly tokenExpiresAt: number | undefined;
  readonly status: GrantStatus;
  readonly source: 'config' | 'store';
  readonly provider: string | undefined;
  readonly material: SecretMaterial | undefined;
  /** A config grant whose secret a command prints (credentials/providers/cmd-secrets.ts): run on use, never read here. */
  readonly secretCommand?: SecretCommand | undefined;
  /** Where its secret comes from, as the audit line's `secret_source` says (absent: the store). */
  readonly secretSource?: SecretSource | undefined;
}

export interface McpEndpoints {
  readonly paths: readonly PathGlob[];
  readonly maxBody: number;
}

/** The request body read whole on an MCP endpoint by default (grants.ID.mcp.max_body). */
export const DEFAULT_MCP_MAX_BODY = 1024 * 1024;

/** A grant's mcp: settings, compiled; undefined without (a glob that does not compile was refused by the config). */
function mcpEndpointsOf(mcp: { paths: readonly string[]; max_body?: string | undefined } | undefined): McpEndpoints | undefined {
  if (!mcp) return undefined;
  const paths = mcp.paths.map(compileGlob).filter((g): g is PathGlob => typeof g !== 'string');
  const max = mcp.max_body === undefined ? undefined : parseByteSize(mcp.max_body);
  return { paths, maxBody: max ?? DEFAULT_MCP_MAX_BODY };
}

/** The audit line's `secret_source` for a grant's own secret (minted credentials name their type). */
export type SecretSource = 'store' | 'env' | 'file' | 'cmd' | 'google_service_account' | 'github_app';

/** The part of the store the registry reads. */
export interface RecordSource {
  get<T>(id: string): T | undefined;
  entries<T>(prefix: string): Array<[string, T]>;
}

/**
 * Builds the grant table from the config (secrets by reference, read once here) and the store
 * (secrets already decrypted in memory). Called at start and on every store change, never per
 * request: the request path only reads the resulting Map.
 */
export function buildGrants(config: Config, store: RecordSource, env: NodeJS.ProcessEnv): Map<string, Grant> {
  const grants = new Map<string, Grant>();
  // A refresh refused (needs_reconnect) or `keyway revoke` is recorded in the live state record.
  const liveStatus = (id: string, base: GrantStatus): GrantStatus => {
    if (base !== 'active') return base;
    return store.get<OAuthState>(oauthStateId(id))?.status ?? base;
  };
  for (const [id, g] of Object.entries(config.grants)) {
    let material: SecretMaterial | undefined;
    const secretCommand = g.secret?.kind === 'cmd' ? g.secret : undefined;
    if (g.secret && g.secret.kind !== 'cmd') {
      try {
        const text = readSecretRef(g.secret, env, config.home);
        material =
          g.type === 'basic'
            ? parseBasicSecret(text)
            : g.type === 'aws_sigv4' ||
                g.type === 'hmac' ||
                g.type === 'mtls' ||
                g.type === 'jwt' ||
                g.type === 'google_service_account' ||
                g.type === 'github_app'
              ? parseMaterial(g.type, text)
              : text;
      } catch (err) {
        throw new KeywayError('config_invalid', `grants.${id}.secret: ${(err as Error).message}`);
      }
    }
    let certificate: ClientCertificateMaterial | undefined;
    if (g.client_certificate) {
      const ref = g.client_certificate;
      const read = (key: string, r: typeof ref.certificate) => {
        try {
          return readSecretRef(r, env, config.home);
        } catch (err) {
          throw new KeywayError('config_invalid', `grants.${id}.client_certificate.${key}: ${(err as Error).message}`);
        }
      };
      certificate = {
        certificate: read('certificate', ref.certificate),
        privateKey: read('private_key', ref.private_key),
        passphrase: ref.passphrase ? read('passphrase', ref.passphrase) : undefined,
      };
      if (g.type === 'mtls') material = certificate;
    }
    grants.set(id, {
      id,
      type: g.type,
      domains: g.domains,
      injector: injectorFor(g.type, g.inject),
      allowHttp: g.allow_http,
      allowRange: g.allow_range,
      requirePurpose: g.require_purpose,
      bodyPlaceholder: g.inject?.body ? grantPlaceholder(id) : undefined,
      bodyFields: bodyFieldsOf(g.inject?.body),
      aws: g.type === 'aws_sigv4' ? awsSigningOf(g) : undefined,
      google: g.type === 'google_service_account' ? { scopes: g.scopes ?? [], subject: g.subject } : undefined,
      github: g.type === 'github_app' ? githubSettingsOf(g) : undefined,
      hmac: hmacSigningOf(g),
      clientCertificate: clientCertificateOf(id, g.type === 'mtls' ? material : certificate),
      mcp: mcpEndpointsOf(g.mcp),
      tokenExpiresAt: jwtExpiryOf(g.type, material),
      status: liveStatus(id, 'active'),
      source: 'config',
      provider: g.provider,
      material,
      secretCommand,
      // An OAuth grant of the config with no secret reference keeps its tokens in the store.
      secretSource: g.type === 'google_service_account' || g.type === 'github_app' ? g.type : (g.secret?.kind ?? 'store'),
    });
  }
  for (const [, stored] of store.entries<StoredGrant>(GRANT_PREFIX)) {
    if (grants.has(stored.id)) continue; // the config is authoritative for its own ids
    const domains = stored.domains.map(parseDomainPattern).filter((d): d is DomainPattern => typeof d !== 'string');
    let injector: Injector;
    try {
      injector = injectorFor(stored.type, stored.inject);
    } catch {
      continue; // an api_key grant saved without injection settings cannot be used
    }
    grants.set(stored.id, {
      id: stored.id,
      type: stored.type,
      domains,
      injector,
      allowHttp: stored.allow_http ?? false,
      allowRange: stored.allow_range ?? false,
      requirePurpose: stored.require_purpose ?? false,
      bodyPlaceholder: stored.inject?.body ? grantPlaceholder(stored.id) : undefined,
      bodyFields: bodyFieldsOf(stored.inject?.body),
      aws: stored.type === 'aws_sigv4' ? awsSigningOf(stored) : undefined,
      google: stored.type === 'google_service_account' ? { scopes: stored.scopes ?? [], subject: stored.subject } : undefined,
      github: stored.type === 'github_app' ? githubSettingsOf(stored) : undefined,
      hmac: hmacSigningOf(stored),
      clientCertificate: clientCertificateOf(
        stored.id,
        stored.type === 'mtls' ? stored.secret : store.get<ClientCertificateMaterial>(clientCertificateRecordId(stored.id)),
      ),
      mcp: mcpEndpointsOf(stored.mcp),
      tokenExpiresAt: jwtExpiryOf(stored.type, stored.secret),
      status: liveStatus(stored.id, stored.status),
      source: 'store',
      provider: stored.provider,
      // Blank material (stored before empty secrets were refused) counts as none: "no usable secret".
      material: usableMaterial(stored.type, stored.secret) ? stored.secret : undefined,
      secretCommand: undefined,
      secretSource: stored.type === 'google_service_account' || stored.type === 'github_app' ? stored.type : 'store',
    });
  }
  return grants;
}

/** An hmac grant's compiled scheme and body bound; undefined for any other grant (or one with no scheme). */
function hmacSigningOf(grant: { type: string; sign?: HmacSignConfig | undefined; max_signed_body?: string | undefined }): Grant['hmac'] {
  if (grant.type !== 'hmac' || grant.sign === undefined) return undefined;
  const max = grant.max_signed_body === undefined ? undefined : parseByteSize(grant.max_signed_body);
  return { scheme: compileHmacScheme(grant.sign), maxSignedBody: max ?? DEFAULT_MAX_SIGNED_BODY };
}

/** inject.body's field names, when it names them: the only JSON members and form fields swapped in. */
function bodyFieldsOf(body: boolean | { fields: readonly string[] } | undefined): ReadonlySet<string> | undefined {
  return typeof body === 'object' ? new Set(body.fields) : undefined;
}

/** A grant's client certificate, read and checked; a problem is kept (requests are refused with it), never thrown. */
function clientCertificateOf(id: string, material: SecretMaterial | undefined): ClientCertificate | undefined {
  if (!material || typeof material !== 'object' || !('certificate' in material)) return undefined;
  return loadClientCertificate(material, `grant "${id}"`);
}

function jwtExpiryOf(type: GrantType, material: SecretMaterial | undefined): number | undefined {
  return type === 'jwt' && typeof material === 'string' ? storedJwtExpiry(material) : undefined;
}

export interface GitHubAppSettings {
  apiUrl: string;
  /** The api_url's host (lower case): where the token goes as Bearer. */
  apiHost: string;
  /** The api_url's path segments (GitHub Enterprise Server: api, v3): its /app endpoints are below them. */
  apiBase: readonly string[];
  repositories: readonly string[] | undefined;
  permissions: Readonly<Record<string, string>> | undefined;
}

function githubSettingsOf(g: {
  api_url?: string | undefined;
  repositories?: readonly string[] | undefined;
  permissions?: Readonly<Record<string, string>> | undefined;
}): GitHubAppSettings {
  const apiUrl = g.api_url ?? 'https://api.github.com';
  const url = new URL(apiUrl);
  const apiBase = url.pathname.split('/').filter(Boolean);
  return { apiUrl, apiHost: url.hostname.toLowerCase(), apiBase, repositories: g.repositories, permissions: g.permissions };
}
