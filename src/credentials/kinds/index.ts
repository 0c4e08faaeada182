import type { GrantType } from '../../config/index.ts';
import type { HmacSignConfig } from '../../config/hmac/sign-schema.ts';
import { parseByteSize } from '../../config/byte-size.ts';
import type { GitHubAppSettings, Grant } from '../grants.ts';
import { parseBasicSecret, parseMaterial, type SecretMaterial } from '../material.ts';
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
  /** Its own settings, compiled. */
  compile(fields: KindFields): KindSettings;
  /** Its credential is minted by keyway from a key (the audit line's secret_source names the type). */
  readonly minted: boolean;
}

const asText = (text: string): SecretMaterial => text;
const none = (): KindSettings => ({});

/** A type whose material is a JSON object (or a JWT, read for its exp): parsed and checked as `secrets set` does. */
function structured(type: GrantType): (text: string) => SecretMaterial {
  return (text) => parseMaterial(type, text);
}

export const KINDS: { readonly [T in GrantType]: GrantKind } = {
  bearer: { readConfigSecret: asText, compile: none, minted: false },
  api_key: { readConfigSecret: asText, compile: none, minted: false },
  basic: { readConfigSecret: parseBasicSecret, compile: none, minted: false },
  jwt: { readConfigSecret: structured('jwt'), compile: none, minted: false },
  // The config's text is a refresh or access token; a client_credentials grant's is its secret.
  oauth2: { readConfigSecret: asText, compile: none, minted: false },
  client_credentials: { readConfigSecret: asText, compile: none, minted: false },
  mtls: { readConfigSecret: structured('mtls'), compile: none, minted: false },
  aws_sigv4: { readConfigSecret: structured('aws_sigv4'), compile: (g) => ({ aws: awsSigningOf(g) }), minted: false },
  hmac: { readConfigSecret: structured('hmac'), compile: (g) => ({ hmac: hmacSigningOf(g) }), minted: false },
  google_service_account: {
    readConfigSecret: structured('google_service_account'),
    compile: (g) => ({ google: { scopes: g.scopes ?? [], subject: g.subject } }),
    minted: true,
  },
  github_app: { readConfigSecret: structured('github_app'), compile: (g) => ({ github: githubSettingsOf(g) }), minted: true },
};

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
