import { secretTextProblem } from './secret-text.ts';
import type { Config, DomainPattern, GrantType, SecretCommand } from '../config/index.ts';
import type { SourcedSecret } from '../config/secret-sources.ts';
import type { ModelApiHint } from '../config/spend.ts';
import { parseDomainPattern, readSecretRef } from '../config/index.ts';
import { KeywayError } from '../errors/index.ts';
import { grantPlaceholder } from './body-swap/index.ts';
import type { Grant, McpEndpoints, SecretSource } from './grant.ts';
import type { Injector } from './injectors/index.ts';
import { injectorFor, KINDS, kindOf, type KindFields, readConfigSecret, usableMaterial } from './types/index.ts';
import type { SecretMaterial } from './material.ts';
import { parseByteSize } from '../config/byte-size.ts';
import { parseDuration } from '../config/duration.ts';
import { GRANT_PREFIX, type GrantStatus, type StoredGrant } from './grant-record.ts';
import { oauthStateId, type OAuthState } from './issuing/oauth-state.ts';
import { clientCertificateRecordId } from './grant-record.ts';
import { loadClientCertificate, type ClientCertificate, type ClientCertificateMaterial } from './client-certificate.ts';
import { compileGlob, type PathGlob } from '../policy/glob.ts';
import { captureHosts } from '../capture/core/settings.ts';
import type { RecordSource } from './store/credential-store.ts';

// The grant table: every grant of the config and the store, compiled once (grant.ts says what a
// compiled grant is), each by its type's kind (types/index.ts KINDS).

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
      if (KINDS[g.type].wire.by === 'connection') material = certificate;
    }
    grants.set(
      id,
      compileGrant(id, g, {
        domains: g.domains,
        injector: injectorFor(g.type, g.inject),
        certificate: KINDS[g.type].wire.by === 'connection' ? material : certificate,
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
        certificate: KINDS[stored.type].wire.by === 'connection' ? stored.secret : store.get<ClientCertificateMaterial>(clientCertificateRecordId(stored.id)),
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
  model_api?: ModelApiHint | undefined;
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
    modelApi: g.model_api,
    bodyPlaceholder: g.inject?.body ? grantPlaceholder(id) : undefined,
    bodyFields: bodyFieldsOf(g.inject?.body),
    // Every key present on every grant (one object shape for the request path), the type's own set next.
    settings: undefined,
    guard: undefined,
    retry: undefined,
    logins: undefined,
    ...settings,
    signer: kind.wire.by === 'sign' ? kind.wire.signer(g) : undefined,
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
    secretSource: kind.issuer.by === 'minted' || kind.issuer.by === 'request' ? (g.type as SecretSource) : origin.secretSource,
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

/** Where a config secret came from, for a message that names it and never its value. */
function secretSource(ref: { kind: 'env'; name: string } | { kind: 'file'; path: string }): string {
  return ref.kind === 'env' ? `environment variable ${ref.name}` : `file ${ref.path}`;
}
