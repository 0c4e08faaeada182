import type { GrantType, InjectConfig } from '../../config/index.ts';
import type { Injector } from '../injectors/index.ts';
import { isBlankSecret } from '../../config/index.ts';
import { KeywayError } from '../../errors/index.ts';
import type { BasicMaterial, OAuthMaterial, SecretMaterial } from '../material.ts';
import { parseSecretJson, reflowPem } from '../material-text.ts';
import { apiKey } from './api_key/kind.ts';
import { awsSigV4 } from './aws_sigv4/kind.ts';
import { basic } from './basic/kind.ts';
import { bearer } from './bearer/kind.ts';
import { clientCredentials } from './client_credentials/kind.ts';
import { githubApp } from './github_app/kind.ts';
import { googleServiceAccount } from './google_service_account/kind.ts';
import { hmac } from './hmac/kind.ts';
import { httpSignature } from './http_signature/kind.ts';
import { tokenExchange } from './token_exchange/kind.ts';
import { dpop } from './dpop/kind.ts';
import { privateKeyJwt } from './private_key_jwt/kind.ts';
import type { GrantKind, KindFields, KindSettings } from './kind.ts';
import type { Wire } from './wire.ts';
import type { OAuthIssuer } from './issuer.ts';
import type { Grant } from '../grant.ts';
import { keywayKey, PEM_KEYS } from './json-keys.ts';
import { jwt } from './jwt/kind.ts';
import { loginCapture } from './login_capture/kind.ts';
import { mtls } from './mtls/kind.ts';
import { oauth2 } from './oauth2/kind.ts';

export type { OwnFields } from './kind.ts';
export type { GrantKind, KindFields, KindSettings } from './kind.ts';
export type { IssueContext, Issuer, MaterialIssuer, MintingIssuer, MintWith, OAuthIssuer, OnBehalf, RenewContext, RequestIssuer } from './issuer.ts';
export type { Wire } from './wire.ts';

// Every credential type, registered once. A type added to GRANT_TYPES and not here does not
// compile; what keyway asks of a type (its material, whether it can authenticate, how its credential
// is issued and goes on the wire, its settings) it asks here, not with a chain of type checks.

export const KINDS: { readonly [T in GrantType]: GrantKind<T> } = {
  bearer,
  api_key: apiKey,
  basic,
  jwt,
  oauth2,
  client_credentials: clientCredentials,
  mtls,
  aws_sigv4: awsSigV4,
  hmac,
  google_service_account: googleServiceAccount,
  github_app: githubApp,
  login_capture: loginCapture,
  http_signature: httpSignature,
  token_exchange: tokenExchange,
  dpop,
  private_key_jwt: privateKeyJwt,
};

/**
 * A type's kind where the grant's fields are not narrowed (a stored grant, the config's grant read
 * whole): the grant's own `type` picks the kind, so the fields are that type's.
 */
export function kindOf(type: GrantType): GrantKind<GrantType> & {
  compile(fields: KindFields): KindSettings;
  describe?(fields: KindFields, injector: Injector): string;
  wire: Wire<KindFields>;
} {
  return KINDS[type] as never;
}

/** The document a type publishes under /.well-known/<name>, made from the grants of that type; undefined: none does. */
export function publishedDocument(name: string, grants: Iterable<Grant>): { mediaType: string; body: unknown } | undefined {
  for (const kind of Object.values(KINDS) as GrantKind[]) {
    const published = kind.publishes;
    if (published?.name !== name) continue;
    const mine = [...grants].filter((grant) => grant.type === kind.type);
    return { mediaType: published.mediaType, body: published.document(mine) };
  }
  return undefined;
}

/** How an OAuth type's tokens are got (consented, or with its client alone); undefined: the type's credential is issued another way. */
export function oauthIssuerOf(type: GrantType): OAuthIssuer | undefined {
  const issuer = KINDS[type].issuer;
  return issuer.by === 'oauth' ? issuer : undefined;
}

/** The injector a grant uses: its own `inject` settings where its type takes them, else its type's default. */
export function injectorFor(type: GrantType, inject: InjectConfig | undefined): Injector {
  return KINDS[type].wire.injector(inject);
}

/** True when the material can authenticate (GrantKind.usable); none at all cannot. */
export function usableMaterial(type: GrantType, material: SecretMaterial | undefined): boolean {
  return material !== undefined && KINDS[type].usable(material);
}

/**
 * The material of a grant whose type gets its tokens from an OAuth provider (its issuer is 'oauth'),
 * read as OAuth material; undefined for every other type, whatever keys its material holds: a
 * type is OAuth because its kind says so, never because its secret looks like a client.
 */
export function oauthMaterialOf(type: GrantType, material: SecretMaterial | undefined): OAuthMaterial | undefined {
  // An OAuth type's material is its JSON object form; the text a config gives it (a token) is not.
  return KINDS[type].issuer.by === 'oauth' && typeof material === 'object' && material !== null ? (material as OAuthMaterial) : undefined;
}

/**
 * Parses what a user typed or piped for a grant of this type: one line, or a JSON object the type
 * reads. Throws a message that never quotes the input, since the input is the secret.
 */
export function parseMaterial(type: GrantType, input: string): SecretMaterial {
  const kind = KINDS[type];
  const text = input.replace(/\r?\n$/, '');
  const fromLine = kind.line?.(text);
  if (fromLine !== undefined) return fromLine;
  if (!kind.object) throw new KeywayError('usage', kind.shape);
  let parsed: unknown;
  try {
    parsed = parseSecretJson(text);
  } catch {
    throw new KeywayError('usage', kind.shape);
  }
  // A JSON string (`"{…}"`) or list is not the object asked for: the same message, naming its fields.
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new KeywayError('usage', kind.shape);
  // No prototype: a key "__proto__" or "constructor" in the pasted JSON is a key like any other.
  const obj: Record<string, unknown> = Object.create(null);
  for (const [k, v] of Object.entries(parsed)) obj[keywayKey(k)] = v;
  for (const k of PEM_KEYS) if (typeof obj[k] === 'string') obj[k] = reflowPem(obj[k]);
  const str = (key: string, required: boolean): string | undefined => {
    const v = obj[key];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || isBlankSecret(v)) throw new KeywayError('usage', `${type} secret: "${key}" must be a non-empty string`);
    return v;
  };
  return kind.object({ obj, str });
}

/** What a grant type's secret is, for a refusal: the fields, never the text given. */
export function materialShape(type: GrantType): string {
  return KINDS[type].shape;
}

/** A basic secret in either form, as the config's env: or file: reference holds it. */
export function parseBasicSecret(text: string): BasicMaterial {
  return parseMaterial('basic', text) as BasicMaterial;
}

/** A secret the config names (env:, file:), its text read as the type's material. */
export function readConfigSecret(type: GrantType, text: string): SecretMaterial {
  return KINDS[type].parsesConfigSecret ? parseMaterial(type, text) : text;
}
