// Names shared by the config, the store and the command line (no validation library needed).
// Up to 63 characters, like a DNS label: ids appear in audit lines, metrics labels and file names.
export const GRANT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const GRANT_TYPES = [
  'oauth2',
  'client_credentials',
  'api_key',
  'bearer',
  'basic',
  'aws_sigv4',
  'hmac',
  'mtls',
  'jwt',
  'google_service_account',
  'github_app',
  'login_capture',
  'http_signature',
  'token_exchange',
  'dpop',
  'private_key_jwt',
] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

/** Signature algorithms an identity token may use: public-key ones only. No `none`, and no HMAC (its "key" would be public). */
export const IDENTITY_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
