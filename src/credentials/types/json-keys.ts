// The keys of a secret's JSON object form: as other tools write them, read as keyway's own
// (camelCase), and those whose value is a PEM. parseMaterial reads a secret with them; the help a
// person is given (secret-forms.ts) says what they mean for pasting.

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

/** A JSON key as keyway reads it: its own camelCase for the spellings other tools print. */
export function keywayKey(key: string): string {
  // Own keys only: "constructor" is not a spelling of anything.
  return Object.hasOwn(CAMEL, key) ? CAMEL[key]! : key;
}

/**
 * The keys whose value is a PEM, its line breaks restored however it was pasted (a password field
 * or a shell turns them into spaces): a client certificate, a private key.
 */
export const PEM_KEYS: readonly string[] = ['certificate', 'privateKey'];
