import { secretTextProblem } from './secret-text.ts';
import type { Config, DomainPattern, GrantType, SecretCommand } from '../config/index.ts';
import type { SourcedSecret } from '../config/secret-sources.ts';
import { parseDomainPattern, readSecretRef } from '../config/index.ts';
import type { IncomingHttpHeaders } from 'node:http';
import { KeywayError, type ProxyError } from '../errors/index.ts';
import { grantPlaceholder } from './body-swap/index.ts';
import type { Injector } from './injectors/index.ts';
import { injectorFor, KINDS, kindOf, type KindFields, readConfigSecret, usableMaterial } from './types/index.ts';
import type { SecretMaterial } from './material.ts';
import type { RequestSigner } from './signing/signer.ts';
import { parseByteSize } from '../config/byte-size.ts';
import { parseDuration } from '../config/duration.ts';
import { GRANT_PREFIX, type GrantStatus, type StoredGrant } from './grant-record.ts';
import { oauthStateId, type OAuthState } from './oauth-state.ts';
import { clientCertificateRecordId } from './grant-record.ts';
import { loadClientCertificate, type ClientCertificate, type ClientCertificateMaterial } from './client-certificate.ts';
import { compileGlob, type PathGlob } from '../policy/glob.ts';
import { captureHosts, type CaptureSettings } from './capture/settings.ts';

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
  /**
   * Its type's own settings, compiled once by its kind (an AWS grant's region and role, a GitHub
   * App's API): read only by its type's files (credentials/types/<type>/), never by the proxy.
   */
  readonly settings: object | undefined;
  /**
   * Its type's reading of each answer to the grant's requests (it may learn from any: a DPoP
   * nonce), and what to do about one: see RetryVerdict. Absent: keyway's default for every answer.
   */
  readonly retry: RetryAsk | undefined;
  /** A refusal its type makes before the agent's rules are judged (a GitHub App's own /app endpoints: only keyway mints). */
  readonly guard: RequestGuard | undefined;
  /** login_capture: the token endpoints watched and the fields swapped (credentials/capture/, proxy/stages/capture*.ts). */
  readonly logins?: CaptureSettings | undefined;
  /**
   * How its requests are signed (aws_sigv4, an hmac grant with a scheme), compiled once by its kind:
   * the proxy plans (stage signing-plan) and signs (body stage sign) through it, never by type.
   */
  readonly signer: RequestSigner | undefined;
  /**
   * The client certificate presented on this grant's upstream connections (mTLS), read once here:
   * an mtls grant's secret, or the certificate another grant carries beside its secret.
   */
  readonly clientCertificate: ClientCertificate | undefined;
  /** Paths that are MCP endpoints (src/mcp/, proxy/stages/mcp.ts), and the largest body read there. */
  readonly mcp?: McpEndpoints | undefined;
  /** When its secret itself stops working (a jwt's exp, epoch ms), where its type reads one; never sent past it. */
  readonly secretExpiresAt: number | undefined;
  /** renew_floor in ms: a 401 renews its token at most once per this (absent: DEFAULT_RENEW_FLOOR_MS). */
  readonly renewFloorMs?: number | undefined;
  readonly status: GrantStatus;
  readonly source: 'config' | 'store';
  readonly provider: string | undefined;
  readonly material: SecretMaterial | undefined;
  /** A config grant whose secret a command prints (credentials/providers/cmd-secrets.ts): run on use, never read here. */
  readonly secretCommand?: SecretCommand | undefined;
  /** A config grant whose secret is an item of a secret source (credentials/sources/): fetched on use, cached for the source's ttl. */
  readonly secretFrom?: SourcedSecret | undefined;
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

/**
 * The audit line's `secret_source` for a grant's own secret (minted credentials name their type); a
 * secret from a source (secret_sources:) names that source, as the config calls it.
 */
export type SecretSource = 'store' | 'env' | 'file' | 'cmd' | 'google_service_account' | 'github_app' | (string & {});

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
    const secretFrom = g.secret?.kind === 'source' ? g.secret : undefined;
    if (g.secret && g.secret.kind !== 'cmd' && g.secret.kind !== 'source') {
      try {
        const text = readSecretRef(g.secret, env, config.home);
        const problem = secretTextProblem(g.type, g.inject?.format, text);
        if (problem !== undefined) throw new Error(`${secretSource(g.secret)}: ${problem}`);
        material = readConfigSecret(g.type, text);
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
      if (KINDS[g.type].certificateIsSecret) material = certificate;
    }
    grants.set(
      id,
      compileGrant(id, g, {
        domains: g.domains,
        injector: injectorFor(g.type, g.inject),
        certificate: KINDS[g.type].certificateIsSecret ? material : certificate,
        status: liveStatus(id, 'active'),
        source: 'config',
        material,
        secretCommand,
        secretFrom,
        // An OAuth grant of the config with no secret reference keeps its tokens in the store.
        secretSource: secretFrom?.from ?? g.secret?.kind ?? 'store',
      }),
    );
  }
  for (const [, stored] of store.entries<StoredGrant>(GRANT_PREFIX)) {
    if (grants.has(stored.id)) continue; // the config is authoritative for its own ids
    let injector: Injector;
    try {
      injector = injectorFor(stored.type, stored.inject);
    } catch {
      continue; // an api_key grant saved without injection settings cannot be used
    }
    grants.set(
      stored.id,
      compileGrant(stored.id, stored, {
        domains: stored.domains.map(parseDomainPattern).filter((d): d is DomainPattern => typeof d !== 'string'),
        injector,
        certificate: KINDS[stored.type].certificateIsSecret ? stored.secret : store.get<ClientCertificateMaterial>(clientCertificateRecordId(stored.id)),
        status: liveStatus(stored.id, stored.status),
        source: 'store',
        // Blank material (stored before empty secrets were refused) counts as none: "no usable secret".
        material: usableMaterial(stored.type, stored.secret) ? stored.secret : undefined,
        secretCommand: undefined,
        secretFrom: undefined,
        secretSource: 'store',
      }),
    );
  }
  return grants;
}

/** The settings a grant has wherever it was defined (the config's grant, a stored grant). */
interface GrantFields extends KindFields {
  type: GrantType;
  inject?: { body?: boolean | { fields: readonly string[] } | undefined } | undefined;
  allow_http?: boolean | undefined;
  allow_range?: boolean | undefined;
  require_purpose?: boolean | undefined;
  mcp?: { paths: readonly string[]; max_body?: string | undefined } | undefined;
  provider?: string | undefined;
  /** The types that renew on a 401 take it (types/values.ts renewFloorText). */
  renew_floor?: string | undefined;
}

/** What differs by where a grant was defined: read from the config's references, or from the store. */
interface GrantOrigin {
  domains: readonly DomainPattern[];
  injector: Injector;
  /** An mtls grant's material, or the certificate another grant carries beside its secret. */
  certificate: SecretMaterial | undefined;
  status: GrantStatus;
  source: Grant['source'];
  material: SecretMaterial | undefined;
  secretCommand: SecretCommand | undefined;
  secretFrom: SourcedSecret | undefined;
  /** The secret's own source; a minted type names itself instead. */
  secretSource: SecretSource;
}

/** One grant, as the proxy uses it: every type's settings, then its type's own (KINDS). */
function compileGrant(id: string, g: GrantFields, origin: GrantOrigin): Grant {
  const kind = kindOf(g.type);
  const settings = kind.compile(g);
  return {
    id,
    type: g.type,
    // A capture grant covers its token endpoints' hosts too: its refreshes go there.
    domains: settings.logins === undefined ? origin.domains : [...origin.domains, ...captureHosts(settings.logins)],
    injector: origin.injector,
    allowHttp: g.allow_http ?? false,
    allowRange: g.allow_range ?? false,
    requirePurpose: g.require_purpose ?? false,
    bodyPlaceholder: g.inject?.body ? grantPlaceholder(id) : undefined,
    bodyFields: bodyFieldsOf(g.inject?.body),
    // Every key present on every grant (one object shape for the request path), the type's own set next.
    settings: undefined,
    guard: undefined,
    retry: undefined,
    signer: undefined,
    logins: undefined,
    ...settings,
    clientCertificate: clientCertificateOf(id, origin.certificate),
    mcp: mcpEndpointsOf(g.mcp),
    secretExpiresAt: secretExpiryOf(g.type, origin.material),
    renewFloorMs: g.renew_floor === undefined ? undefined : parseDuration(g.renew_floor),
    status: origin.status,
    source: origin.source,
    provider: g.provider,
    material: origin.material,
    secretCommand: origin.secretCommand,
    secretFrom: origin.secretFrom,
    secretSource: kind.mints !== undefined || kind.issues !== undefined ? (g.type as SecretSource) : origin.secretSource,
  };
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

function secretExpiryOf(type: GrantType, material: SecretMaterial | undefined): number | undefined {
  return material === undefined ? undefined : KINDS[type].expiresAt?.(material);
}

/**
 * What to do with an answer, as a grant's type reads it: `same`, send the request once more with the
 * same credential signed anew (a DPoP nonce the server asked for); `fresh`, once more with a new
 * credential (a token the server no longer takes); `relay`, pass the answer on as it came;
 * undefined, keyway's default (a 401 that does not ask for a scope gets a fresh credential).
 */
export type RetryVerdict = 'same' | 'fresh' | 'relay' | undefined;

/** Reads an answer's head; `url` is the request's origin and path. */
export type RetryAsk = (status: number, headers: IncomingHttpHeaders, url: string) => RetryVerdict;

/** The request as a grant's guard reads it. */
export interface GuardedRequest {
  readonly grantId: string;
  /** The connection's target host (lower case). */
  readonly host: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

/** A type's own refusal: the rule named on the audit line, and the error answered. */
export type RequestGuard = (request: GuardedRequest) => { rule: string; error: ProxyError } | undefined;

/** Where a config secret came from, for a message that names it and never its value. */
function secretSource(ref: { kind: 'env'; name: string } | { kind: 'file'; path: string }): string {
  return ref.kind === 'env' ? `environment variable ${ref.name}` : `file ${ref.path}`;
}
