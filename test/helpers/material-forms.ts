// The documented forms of each grant type's secret (README: Recipes, Signed requests, GitHub Apps,
// Google service accounts, Client certificates; `keyway secrets set --help`), as a person gives
// them: the text piped or pasted, the JSON object where the form is JSON, and what must be stored.
// Keys are made per run; none is a real secret.

export interface TestKeys {
  /** A client certificate, PEM, LF line breaks. */
  certificate: string;
  /** Its key, PKCS#8 PEM. */
  privateKey: string;
  /** One RSA key in both PEM encodings (GitHub's .pem is PKCS#1, Google's key file PKCS#8). */
  rsaPkcs1: string;
  rsaPkcs8: string;
}

export interface MaterialForm {
  type: string;
  name: string;
  /** What `secrets set --stdin` reads, and what a text field sends. */
  text: string;
  /** The same material as a JSON object (a JSON body's `secret`), where the form is valid JSON. */
  object?: Record<string, unknown> | undefined;
  /** More fields the grant needs to be added (POST /api/grants). */
  grant?: Record<string, unknown> | undefined;
  /** The material the store must hold. */
  want: unknown;
}

const JWT = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: 'forms', exp: Math.floor(Date.now() / 1000) + 3600 })}.c2lnbmF0dXJl`;

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A PEM pasted between quotes as it is: real line breaks inside the JSON string. */
function raw(pem: string): string {
  return pem.trim();
}

/** A PEM whose line breaks a one-line field (an <input>, a form) dropped. */
function oneLine(pem: string): string {
  return pem.trim().replace(/\r?\n/g, '');
}

/** A form that is JSON: its text, its object, and the same as the stored material unless told. */
function json(type: string, name: string, object: Record<string, unknown>, want: unknown = object, grant?: Record<string, unknown>): MaterialForm {
  return { type, name, text: JSON.stringify(object), object, want, grant };
}

export function FORMS(k: TestKeys): MaterialForm[] {
  const mtls = { certificate: k.certificate, privateKey: k.privateKey };
  const app = { appId: '123456', privateKey: k.rsaPkcs1, installationId: '42' };
  // A key file as Google gives it: every field, snake_case, the key with \n escapes.
  const googleFile = {
    type: 'service_account',
    project_id: 'forms-project',
    private_key_id: '0123456789abcdef',
    private_key: k.rsaPkcs8,
    client_email: 'forms@forms-project.iam.gserviceaccount.com',
    client_id: '100000000000000000001',
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: 'https://oauth2.googleapis.com/token',
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: 'https://www.googleapis.com/robot/v1/metadata/x509/forms%40forms-project.iam.gserviceaccount.com',
    universe_domain: 'googleapis.com',
  };
  const google = { clientEmail: googleFile.client_email, privateKey: k.rsaPkcs8, privateKeyId: googleFile.private_key_id, tokenUri: googleFile.token_uri };
  const aws = { accessKeyId: 'AKIAFORMSEXAMPLE0001', secretAccessKey: 'forms/secret+access/key0000000000000000', sessionToken: 'forms-session-token' };
  const googleGrant = { scopes: ['https://www.googleapis.com/auth/drive.readonly'] };
  const hmacGrant = { sign: { preset: 'kraken' } };
  const hmacKey = Buffer.from('forms-hmac-key-0123456789').toString('base64');
  return [
    { type: 'bearer', name: 'the token', text: 'forms-bearer-token\n', want: 'forms-bearer-token' },
    { type: 'api_key', name: 'the key', text: 'forms-api-key', want: 'forms-api-key', grant: { inject: { header: 'x-api-key' } } },
    { type: 'jwt', name: 'the token', text: `${JWT}\n`, want: JWT },
    { type: 'basic', name: 'username:password', text: 'forms-user:pass:with:colons\n', want: { username: 'forms-user', password: 'pass:with:colons' } },
    json('basic', 'JSON', { username: 'forms-user', password: 'forms-pass' }),
    json('oauth2', 'JSON, camelCase', { clientId: 'forms-client', clientSecret: 'forms-client-secret', refreshToken: 'forms-refresh' }),
    json(
      'oauth2',
      'JSON, snake_case',
      { client_id: 'forms-client', client_secret: 'forms-client-secret', refresh_token: 'forms-refresh', scope: 'a b' },
      { clientId: 'forms-client', clientSecret: 'forms-client-secret', refreshToken: 'forms-refresh', scopes: ['a', 'b'] },
    ),
    json('client_credentials', 'JSON', { clientId: 'forms-client', clientSecret: 'forms-client-secret' }),
    json('mtls', 'JSON, PEMs with \\n escapes', mtls),
    json('mtls', 'JSON, snake_case private_key', { certificate: k.certificate, private_key: k.privateKey }, mtls),
    { type: 'mtls', name: 'JSON, PEMs pasted raw', text: `{"certificate":"${raw(k.certificate)}",\n"privateKey":"${raw(k.privateKey)}"}\n`, want: mtls },
    { type: 'mtls', name: 'JSON, PEMs on one line', text: `{"certificate":"${oneLine(k.certificate)}","privateKey":"${oneLine(k.privateKey)}"}`, want: mtls },
    json('aws_sigv4', 'JSON, camelCase', aws),
    json(
      'aws_sigv4',
      'JSON, snake_case',
      { access_key_id: aws.accessKeyId, secret_access_key: aws.secretAccessKey },
      {
        accessKeyId: aws.accessKeyId,
        secretAccessKey: aws.secretAccessKey,
      },
    ),
    json(
      'aws_sigv4',
      'credential_process output',
      {
        Version: 1,
        AccessKeyId: aws.accessKeyId,
        SecretAccessKey: aws.secretAccessKey,
        SessionToken: aws.sessionToken,
        Expiration: '2030-01-01T00:00:00Z',
      },
      aws,
    ),
    { ...json('hmac', 'JSON', { key: hmacKey, keyId: 'forms-key-id' }), grant: hmacGrant },
    { ...json('hmac', 'JSON, snake_case', { key: hmacKey, key_id: 'forms-key-id' }, { key: hmacKey, keyId: 'forms-key-id' }), grant: hmacGrant },
    json('github_app', 'JSON, key with \\n escapes', { appId: 123456, privateKey: k.rsaPkcs1, installationId: 42 }, app),
    json('github_app', 'JSON, snake_case', { app_id: '123456', private_key: k.rsaPkcs1, installation_id: '42' }, app),
    { type: 'github_app', name: 'JSON, key pasted raw', text: `{"appId": 123456, "privateKey": "${raw(k.rsaPkcs1)}", "installationId": 42}`, want: app },
    { type: 'github_app', name: 'JSON, key on one line', text: `{"appId":123456,"privateKey":"${oneLine(k.rsaPkcs1)}","installationId":42}`, want: app },
    { ...json('google_service_account', 'the key file as Google gives it', googleFile, google, googleGrant), text: `${JSON.stringify(googleFile, null, 2)}\n` },
    {
      type: 'google_service_account',
      name: 'the key file, key pasted raw',
      text: JSON.stringify(googleFile).replace(JSON.stringify(k.rsaPkcs8), `"${raw(k.rsaPkcs8)}"`),
      want: google,
      grant: googleGrant,
    },
  ];
}

const PEM = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** The PEM blocks in a material's fields, as the text of each. */
export function rawPems(material: unknown): string[] {
  if (typeof material !== 'object' || material === null) return [];
  return Object.values(material).flatMap((v) => (typeof v === 'string' ? [...v.matchAll(PEM)].map((m) => m[0]) : []));
}

/** The material with each PEM reduced to what it encodes: its label and base64, line breaks aside. */
export function pemsOf(material: unknown): unknown {
  if (typeof material !== 'object' || material === null) return material;
  return Object.fromEntries(
    Object.entries(material)
      .filter(([, v]) => v !== undefined)
      .map(([key, v]) => [key, typeof v === 'string' ? v.replace(PEM, (_m, label: string, body: string) => `${label}:${body.replace(/\s+/g, '')}`).trim() : v]),
  );
}
