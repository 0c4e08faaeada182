import { type GrantType, isBlankSecret } from '../../config/index.ts';
import type { ClientCertificateMaterial } from '../client-certificate.ts';
import type { HmacSignConfig } from '../../config/hmac/sign-schema.ts';
import { parseByteSize } from '../../config/byte-size.ts';
import type { GitHubAppSettings, Grant } from '../grants.ts';
import {
  type AwsMaterial,
  type BasicMaterial,
  type Credential,
  type GitHubAppMaterial,
  type GoogleServiceAccountMaterial,
  type HmacKeyMaterial,
  parseBasicSecret,
  parseMaterial,
  type SecretMaterial,
} from '../material.ts';
import { type AwsSigningFields, awsSigningOf, DEFAULT_MAX_SIGNED_BODY } from '../signing/aws/config.ts';
import { compileHmacScheme } from '../signing/hmac/index.ts';

// Each credential type, once: what keyway asks of a type when it builds a grant, in one record keyed
// by every type, so a type added to GRANT_TYPES and not here fails to compile. This is the start of
// the per-type unit (issue 37): the config text's reading and the type's own compiled settings live
// here; parsing and checking material, issuing, the wire and the leak guard's needles follow.

/** The settings a grant's type may have, as the config's grant and a stored grant both carry them. */
export interface KindFields extends AwsSigningFields {
  scopes?: readonly string[] | undefined;
  subject?: string | undefined;
  api_url?: string | undefined;
  repositories?: readonly string[] | undefined;
  permissions?: Readonly<Record<string, string>> | undefined;
  sign?: HmacSignConfig | undefined;
}

/** What a type compiles of its settings, once per table build (the rest of a Grant is every type's). */
export type KindSettings = Partial<Pick<Grant, 'aws' | 'google' | 'github' | 'hmac'>>;

export interface GrantKind {
  /** A secret the config names (env:, file:), its text read as this type's material. */
  readConfigSecret(text: string): SecretMaterial;
  /**
   * Whether material can authenticate: no empty or whitespace-only token, password or key. Material
   * stored before these checks existed (or written by hand) is checked again on use.
   */
  usable(material: SecretMaterial): boolean;
  /** The credential a static grant's material is (minted and OAuth types: undefined, theirs is issued). */
  credential(material: SecretMaterial): Credential | undefined;
  /** Its own settings, compiled. */
  compile(fields: KindFields): KindSettings;
  /** Its credential is minted by keyway from a key (the audit line's secret_source names the type). */
  readonly minted: boolean;
}

const asText = (text: string): SecretMaterial => text;
const none = (): KindSettings => ({});
const blank = (v: unknown): boolean => typeof v === 'string' && isBlankSecret(v);
const text = (material: SecretMaterial): boolean => typeof material === 'string' && !isBlankSecret(material);
const asToken = (material: SecretMaterial): Credential | undefined => (typeof material === 'string' ? { kind: 'token', value: material } : undefined);
const issued = (): undefined => undefined;
/** OAuth material: any field present must be non-blank (an empty clientId or refreshToken would be sent as is). */
const oauthUsable = (material: SecretMaterial): boolean => typeof material === 'object' && !Object.values(material).some(blank);
/** Material of an object form, with the fields `ok` checks. */
const objectOf =
  <M>(ok: (m: Partial<M>) => boolean) =>
  (material: SecretMaterial): boolean =>
    typeof material === 'object' && ok(material as Partial<M>);

/** A type whose material is a JSON object (or a JWT, read for its exp): parsed and checked as `secrets set` does. */
function structured(type: GrantType): (text: string) => SecretMaterial {
  return (text) => parseMaterial(type, text);
}

export const KINDS: { readonly [T in GrantType]: GrantKind } = {
  bearer: { readConfigSecret: asText, usable: text, credential: asToken, compile: none, minted: false },
  api_key: { readConfigSecret: asText, usable: text, credential: asToken, compile: none, minted: false },
  basic: {
    readConfigSecret: parseBasicSecret,
    usable: objectOf<BasicMaterial>((m) => typeof m.username === 'string' && typeof m.password === 'string' && !blank(m.username) && !blank(m.password)),
    credential: (m) =>
      typeof m === 'object' && 'username' in m && 'password' in m ? { kind: 'basic', username: m.username, password: m.password } : undefined,
    compile: none,
    minted: false,
  },
  jwt: { readConfigSecret: structured('jwt'), usable: text, credential: asToken, compile: none, minted: false },
  // The config's text is a refresh or access token; a client_credentials grant's is its secret.
  oauth2: { readConfigSecret: asText, usable: oauthUsable, credential: issued, compile: none, minted: false },
  client_credentials: { readConfigSecret: asText, usable: oauthUsable, credential: issued, compile: none, minted: false },
  mtls: {
    readConfigSecret: structured('mtls'),
    usable: objectOf<ClientCertificateMaterial>(
      (m) => typeof m.certificate === 'string' && typeof m.privateKey === 'string' && !blank(m.certificate) && !blank(m.privateKey),
    ),
    // The certificate is the connection's, not a header's.
    credential: () => ({ kind: 'none' }),
    compile: none,
    minted: false,
  },
  aws_sigv4: {
    readConfigSecret: structured('aws_sigv4'),
    usable: objectOf<AwsMaterial>(
      (m) =>
        typeof m.accessKeyId === 'string' &&
        typeof m.secretAccessKey === 'string' &&
        !blank(m.accessKeyId) &&
        !blank(m.secretAccessKey) &&
        !blank(m.sessionToken),
    ),
    credential: (m) =>
      typeof m === 'object' && 'secretAccessKey' in m
        ? { kind: 'aws', accessKeyId: m.accessKeyId, secretAccessKey: m.secretAccessKey, sessionToken: m.sessionToken }
        : undefined,
    compile: (g) => ({ aws: awsSigningOf(g) }),
    minted: false,
  },
  hmac: {
    readConfigSecret: structured('hmac'),
    usable: objectOf<HmacKeyMaterial>((m) => typeof m.key === 'string' && !blank(m.key) && !blank(m.keyId) && !blank(m.passphrase)),
    credential: (m) => (typeof m === 'object' && 'key' in m ? { kind: 'hmac', key: m.key, keyId: m.keyId, passphrase: m.passphrase } : undefined),
    compile: (g) => ({ hmac: hmacSigningOf(g) }),
    minted: false,
  },
  google_service_account: {
    readConfigSecret: structured('google_service_account'),
    usable: objectOf<GoogleServiceAccountMaterial>(
      (m) => typeof m.clientEmail === 'string' && typeof m.privateKey === 'string' && typeof m.tokenUri === 'string' && !blank(m.privateKey),
    ),
    credential: issued,
    compile: (g) => ({ google: { scopes: g.scopes ?? [], subject: g.subject } }),
    minted: true,
  },
  github_app: {
    readConfigSecret: structured('github_app'),
    usable: objectOf<GitHubAppMaterial>((m) => typeof m.appId === 'string' && typeof m.privateKey === 'string' && !blank(m.privateKey)),
    credential: issued,
    compile: (g) => ({ github: githubSettingsOf(g) }),
    minted: true,
  },
};

/** True when the material can authenticate (GrantKind.usable); none at all cannot. */
export function usableMaterial(type: GrantType, material: SecretMaterial | undefined): boolean {
  return material !== undefined && KINDS[type].usable(material);
}

/** An hmac grant's compiled scheme and body bound; undefined without a scheme. */
function hmacSigningOf(g: KindFields): Grant['hmac'] {
  if (g.sign === undefined) return undefined;
  const max = g.max_signed_body === undefined ? undefined : parseByteSize(g.max_signed_body);
  return { scheme: compileHmacScheme(g.sign), maxSignedBody: max ?? DEFAULT_MAX_SIGNED_BODY };
}

function githubSettingsOf(g: KindFields): GitHubAppSettings {
  const apiUrl = g.api_url ?? 'https://api.github.com';
  const url = new URL(apiUrl);
  const apiBase = url.pathname.split('/').filter(Boolean);
  return { apiUrl, apiHost: url.hostname.toLowerCase(), apiBase, repositories: g.repositories, permissions: g.permissions };
}
