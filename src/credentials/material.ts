import { createPrivateKey } from 'node:crypto';
import type { GrantType } from '../config/index.ts';
import { isBlankSecret } from '../config/index.ts';
import { KeywayError } from '../errors/index.ts';
import { clientCertificateFields, type ClientCertificateMaterial } from './client-certificate.ts';
import { jwtExpiry } from './jwt.ts';
import { parseSecretJson, reflowPem } from './material-text.ts';

// Secret material per grant type, as `keyway secrets set` takes it and the store keeps it.

export interface OAuth2Material {
  clientId?: string | undefined;
  clientSecret?: string | undefined;
  refreshToken?: string | undefined;
  accessToken?: string | undefined;
  /** Epoch milliseconds. */
  expiresAt?: number | undefined;
  scopes?: string[] | undefined;
  /**
   * For a client keyway registered itself at an authorization server it discovered (keyway connect
   * --mcp): where its tokens are refreshed and revoked, and the resource they are for (RFC 8707).
   * Other grants find their token endpoint through their provider.
   */
  server?: OAuthServer | undefined;
}

export interface OAuthServer {
  issuer: string;
  tokenUrl: string;
  revokeUrl?: string | undefined;
  resource?: string | undefined;
}
export interface ClientCredentialsMaterial {
  clientId: string;
  clientSecret: string;
  scopes?: string[] | undefined;
  accessToken?: string | undefined;
  expiresAt?: number | undefined;
}
export interface BasicMaterial {
  username: string;
  password: string;
}
/** An AWS access key (aws_sigv4): keyway signs with it, never sends it. */
export interface AwsMaterial {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}
/** An HMAC key (hmac): keyway signs with it, never sends it; the key id and passphrase go where the scheme says. */
export interface HmacKeyMaterial {
  key: string;
  keyId?: string | undefined;
  passphrase?: string | undefined;
}
/** A Google service account's JSON key (google_service_account): keyway signs assertions with it, never sends it. */
export interface GoogleServiceAccountMaterial {
  clientEmail: string;
  privateKey: string;
  privateKeyId?: string | undefined;
  tokenUri: string;
}
/** A GitHub App's key (github_app): keyway signs app JWTs with it, never sends it. */
export interface GitHubAppMaterial {
  appId: string;
  privateKey: string;
  /** Absent: the app's only installation. */
  installationId?: string | undefined;
}
export type SecretMaterial =
  | string
  | OAuth2Material
  | ClientCredentialsMaterial
  | BasicMaterial
  | AwsMaterial
  | HmacKeyMaterial
  | ClientCertificateMaterial
  | GoogleServiceAccountMaterial
  | GitHubAppMaterial;

/** The material of an OAuth grant (oauth2, client_credentials), or undefined for any other kind. */
export function oauthMaterialOf(material: SecretMaterial | undefined): OAuth2Material | ClientCredentialsMaterial | undefined {
  if (!material || typeof material !== 'object') return undefined;
  if (
    'username' in material ||
    'secretAccessKey' in material ||
    'key' in material ||
    'certificate' in material ||
    'clientEmail' in material ||
    'appId' in material
  )
    return undefined;
  return material;
}

/** What an injector puts on the wire (or, for `aws`, signs the request with). */
export type Credential =
  | { kind: 'token'; value: string }
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'aws'; accessKeyId: string; secretAccessKey: string; sessionToken: string | undefined }
  | { kind: 'hmac'; key: string; keyId: string | undefined; passphrase: string | undefined }
  /** mtls: nothing goes on the request; the grant's client certificate goes on the connection. */
  | { kind: 'none' };

const CAMEL: Record<string, string> = {
  client_id: 'clientId',
  client_secret: 'clientSecret',
  refresh_token: 'refreshToken',
  access_token: 'accessToken',
  expires_at: 'expiresAt',
  key_id: 'keyId',
  access_key_id: 'accessKeyId',
  secret_access_key: 'secretAccessKey',
  session_token: 'sessionToken',
  private_key: 'privateKey',
  // As the AWS CLI's credential_process and `aws configure export-credentials` print them.
  AccessKeyId: 'accessKeyId',
  SecretAccessKey: 'secretAccessKey',
  SessionToken: 'sessionToken',
  // As a Google service account's key file names them.
  client_email: 'clientEmail',
  app_id: 'appId',
  installation_id: 'installationId',
  private_key_id: 'privateKeyId',
  token_uri: 'tokenUri',
};

/**
 * Parses what a user typed or piped for a grant of this type. Throws a message that never quotes
 * the input, since the input is the secret.
 */
export function parseMaterial(type: GrantType, input: string): SecretMaterial {
  const text = input.replace(/\r?\n$/, '');
  if (type === 'api_key' || type === 'bearer' || type === 'jwt') {
    if (isBlankSecret(text) || /[\r\n]/.test(text)) throw new KeywayError('usage', `a ${type} secret is one non-empty line`);
    if (type === 'jwt') jwtExpiry(text.trim());
    return type === 'jwt' ? text.trim() : text;
  }
  if (type === 'basic' && !text.trimStart().startsWith('{')) return parseBasicPair(text);
  let parsed: unknown;
  try {
    parsed = parseSecretJson(text);
  } catch {
    throw new KeywayError('usage', materialShape(type));
  }
  // A JSON string (`"{…}"`) or list is not the object asked for: the same message, naming its fields.
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new KeywayError('usage', materialShape(type));
  const obj: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(parsed)) obj[CAMEL[k] ?? k] = v;
  for (const k of ['certificate', 'privateKey']) if (typeof obj[k] === 'string') obj[k] = reflowPem(obj[k]);
  const str = (key: string, required: boolean): string | undefined => {
    const v = obj[key];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || isBlankSecret(v)) throw new KeywayError('usage', `${type} secret: "${key}" must be a non-empty string`);
    return v;
  };
  if (type === 'basic') return { username: str('username', true)!, password: str('password', true)! };
  if (type === 'mtls') return clientCertificateFields(obj, 'mtls secret');
  if (type === 'hmac') return { key: str('key', true)!, keyId: str('keyId', false), passphrase: str('passphrase', false) };
  if (type === 'google_service_account') return googleKeyOf(str);
  if (type === 'github_app') return githubAppOf(obj, str);
  if (type === 'aws_sigv4') {
    return { accessKeyId: str('accessKeyId', true)!, secretAccessKey: str('secretAccessKey', true)!, sessionToken: str('sessionToken', false) };
  }
  const scopes = obj['scopes'] ?? (typeof obj['scope'] === 'string' ? String(obj['scope']).split(' ') : undefined);
  if (scopes !== undefined && !(Array.isArray(scopes) && scopes.every((s) => typeof s === 'string'))) {
    throw new KeywayError('usage', `${type} secret: "scopes" must be a list of strings`);
  }
  const expiresAt = obj['expiresAt'];
  if (expiresAt !== undefined && typeof expiresAt !== 'number' && typeof expiresAt !== 'string') {
    throw new KeywayError('usage', `${type} secret: "expiresAt" must be epoch milliseconds or an ISO date`);
  }
  const expiresMs = expiresAt === undefined ? undefined : typeof expiresAt === 'number' ? expiresAt : Date.parse(expiresAt);
  if (type === 'client_credentials') {
    return { clientId: str('clientId', true)!, clientSecret: str('clientSecret', true)!, scopes: scopes as string[] | undefined };
  }
  const material: OAuth2Material = {
    clientId: str('clientId', false),
    clientSecret: str('clientSecret', false),
    refreshToken: str('refreshToken', false),
    accessToken: str('accessToken', false),
    expiresAt: Number.isFinite(expiresMs) ? expiresMs : undefined,
    scopes: scopes as string[] | undefined,
  };
  if (!material.refreshToken && !material.accessToken) throw new KeywayError('usage', 'oauth2 secret: needs "refreshToken" or "accessToken"');
  return material;
}

/** What a grant type's secret is, for a refusal: the fields, never the text given. */
export function materialShape(type: GrantType): string {
  const an = /^(api_key|aws_sigv4|hmac|mtls|oauth2)$/.test(type) ? 'an' : 'a';
  const shapes: Partial<Record<GrantType, string>> = {
    basic: 'username:password or a JSON object {"username","password"}',
    aws_sigv4: 'a JSON object {"accessKeyId","secretAccessKey","sessionToken"?}',
    mtls: 'a JSON object {"certificate","privateKey","passphrase"?} or {"pkcs12","passphrase"?} (or use --client-certificate)',
    hmac: 'a JSON object {"key", "keyId"?, "passphrase"?}',
    github_app: 'a JSON object {"appId","privateKey","installationId"?}',
    google_service_account: 'the JSON key file Google gives ({"client_email","private_key",…})',
    oauth2: 'a JSON object {"refreshToken" or "accessToken","clientId"?,"clientSecret"?,"expiresAt"?,"scopes"?}',
    client_credentials: 'a JSON object {"clientId","clientSecret"}',
  };
  return `${an} ${type} secret is ${shapes[type] ?? 'a JSON object'}`;
}

/**
 * A basic secret written `username:password` (the first colon splits: a password may hold colons,
 * a username may not, as in RFC 7617). Messages never quote the input.
 */
function parseBasicPair(text: string): BasicMaterial {
  const colon = text.indexOf(':');
  if (colon < 1 || /[\r\n]/.test(text)) throw new KeywayError('usage', 'a basic secret is username:password or a JSON object {"username","password"}');
  const password = text.slice(colon + 1);
  if (isBlankSecret(password)) throw new KeywayError('usage', 'a basic secret needs a non-empty password (username:password)');
  return { username: text.slice(0, colon), password };
}

/** A basic secret in either form, as the config's env: or file: reference holds it. */
export function parseBasicSecret(text: string): BasicMaterial {
  return parseMaterial('basic', text.replace(/\r?\n$/, '')) as BasicMaterial;
}

/**
 * A service account's key file, checked: its private key is an RSA private key in PEM, and its
 * token_uri an https:// URL (Google's own when the file has none). Messages never quote the key.
 */
function googleKeyOf(str: (key: string, required: boolean) => string | undefined): GoogleServiceAccountMaterial {
  const privateKey = str('privateKey', true)!;
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(privateKey);
  } catch {
    throw new KeywayError('usage', 'google_service_account secret: "private_key" is not a PEM private key');
  }
  if (key.asymmetricKeyType !== 'rsa')
    throw new KeywayError('usage', 'google_service_account secret: "private_key" is not an RSA key (Google signs with RS256)');
  const tokenUri = str('tokenUri', false) ?? 'https://oauth2.googleapis.com/token';
  let url: URL | undefined;
  try {
    url = new URL(tokenUri);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'https:' || url.username !== '' || url.password !== '') {
    throw new KeywayError('usage', 'google_service_account secret: "token_uri" must be an https:// URL');
  }
  return { clientEmail: str('clientEmail', true)!, privateKey, privateKeyId: str('privateKeyId', false), tokenUri };
}

/** A GitHub App's id, private key (RSA, PEM: GitHub's .pem download) and optional installation id. Never quotes the key. */
function githubAppOf(obj: Record<string, unknown>, str: (key: string, required: boolean) => string | undefined): GitHubAppMaterial {
  const id = (key: string, required: boolean): string | undefined => {
    const v = obj[key];
    if (v === undefined && !required) return undefined;
    const text = typeof v === 'number' ? String(v) : v;
    if (typeof text !== 'string' || !/^\d{1,20}$/.test(text)) throw new KeywayError('usage', `github_app secret: "${key}" must be a number`);
    return text;
  };
  const privateKey = str('privateKey', true)!;
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(privateKey);
  } catch {
    throw new KeywayError('usage', 'github_app secret: "privateKey" is not a PEM private key (the .pem GitHub gives)');
  }
  if (key.asymmetricKeyType !== 'rsa') throw new KeywayError('usage', 'github_app secret: "privateKey" is not an RSA key (GitHub signs app JWTs with RS256)');
  return { appId: id('appId', true)!, privateKey, installationId: id('installationId', false) };
}
