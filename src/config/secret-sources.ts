// Secret sources (issue 49): stores a company already runs (AWS Secrets Manager, SSM Parameter
// Store, Vault's KV v2, a 1Password Connect server, the desktop's keyring), named once under `secret_sources:` and referred to by a grant's secret:
// `secret: {from: NAME, id: ITEM, key: FIELD}`. keyway reads them with the vendor's SDK or its
// documented HTTP API (credentials/sources/), keeps a value in memory for `ttl`, remembers a
// failure for `failure_ttl`, and serves the last value for at most `max_stale` while the source
// cannot be reached; past that, the request is refused (502 secret_unavailable) and nothing goes
// upstream without its credential.
import { z } from 'zod';
import { durationWithin, secretRef, text } from './schema/values.ts';
import { ENDPOINT_RULE, endpointAllowed, type SourcedSecret } from './sourced-secret.ts';

export { describeSourced, ENDPOINT_RULE, endpointAllowed, type SourcedSecret, sourcedKey } from './sourced-secret.ts';

export const SOURCE_TTL_DEFAULT_MS = 5 * 60_000;
export const SOURCE_FAILURE_TTL_DEFAULT_MS = 10_000;
export const SOURCE_MAX_STALE_DEFAULT_MS = 10 * 60_000;
export const SOURCE_TIMEOUT_DEFAULT_MS = 10_000;

const endpoint = z.string().refine(endpointAllowed, { message: ENDPOINT_RULE });

/** Vault's Kubernetes auth: the pod's projected service account token, exchanged under a Vault role. */
const kubernetesAuth = z.strictObject({
  role: z.string().min(1),
  mount: z.string().min(1).default('kubernetes'),
  token_file: z.string().min(1).default('/var/run/secrets/kubernetes.io/serviceaccount/token'),
});

const lifetimes = {
  // How long a value is used before it is fetched again.
  ttl: durationWithin(1_000, 24 * 3_600_000).default(SOURCE_TTL_DEFAULT_MS),
  // How long a failed fetch is remembered before the next try (requests meanwhile get the failure, or a stale value).
  failure_ttl: durationWithin(0, 3_600_000).default(SOURCE_FAILURE_TTL_DEFAULT_MS),
  // How long past its ttl a value may still be served while the source cannot be reached; 0: never.
  max_stale: durationWithin(0, 7 * 24 * 3_600_000).default(SOURCE_MAX_STALE_DEFAULT_MS),
  // The longest one fetch may take.
  timeout: durationWithin(100, 120_000).default(SOURCE_TIMEOUT_DEFAULT_MS),
};

const aws = {
  // The region; else AWS_REGION / AWS_DEFAULT_REGION or the profile's, as the AWS SDK finds it.
  region: z
    .string()
    .regex(/^[a-z0-9-]+$/, 'expected a region such as eu-west-1')
    .optional(),
  // Another endpoint than AWS's (a VPC endpoint, an emulator such as moto or LocalStack).
  endpoint: endpoint.optional(),
  // A profile of ~/.aws; else the SDK's usual chain (environment, profile, web identity, instance role).
  profile: z.string().min(1).optional(),
};

const sourceSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('aws_secrets_manager'), ...aws, ...lifetimes }),
  z.strictObject({ type: z.literal('aws_ssm'), ...aws, ...lifetimes }),
  z.strictObject({
    type: z.literal('vault_kv'),
    // Vault's address; else VAULT_ADDR.
    address: endpoint.optional(),
    // Where the KV v2 engine is mounted.
    mount: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/, 'expected a mount path such as secret')
      .default('secret'),
    // A Vault Enterprise namespace (X-Vault-Namespace); else VAULT_NAMESPACE.
    namespace: z.string().min(1).optional(),
    // Token auth: the token by reference; else VAULT_TOKEN.
    token: secretRef.optional(),
    // AppRole auth instead of a token: keyway logs in and renews the login as it expires.
    approle: z.strictObject({ role_id: secretRef, secret_id: secretRef, mount: z.string().min(1).default('approle') }).optional(),
    // Kubernetes auth instead: the pod's service account token, exchanged for a Vault token under role.
    kubernetes: kubernetesAuth.optional(),
    ...lifetimes,
  }),
  // The desktop's Secret Service (GNOME Keyring, KWallet), through secret-tool (libsecret-tools).
  z.strictObject({ type: z.literal('keychain'), ...lifetimes }),
  z.strictObject({
    type: z.literal('gcp_secret_manager'),
    // The project of bare secret names; else the key file's project_id.
    project: z
      .string()
      .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'expected a project id such as my-project')
      .optional(),
    // The service account's JSON key by reference; else the file GOOGLE_APPLICATION_CREDENTIALS names.
    credentials: secretRef.optional(),
    // Another endpoint than Google's (a regional or private one, an emulator).
    endpoint: endpoint.optional(),
    ...lifetimes,
  }),
  z.strictObject({
    type: z.literal('onepassword'),
    // A 1Password Connect server (its REST API); else OP_CONNECT_HOST.
    connect_host: endpoint.optional(),
    // The Connect server's access token by reference; else OP_CONNECT_TOKEN.
    token: secretRef.optional(),
    ...lifetimes,
  }),
]);

export type SecretSourceConfig = z.output<typeof sourceSchema>;
export type SecretSourceType = SecretSourceConfig['type'];
export const SECRET_SOURCE_TYPES: readonly SecretSourceType[] = ['aws_secrets_manager', 'aws_ssm', 'vault_kv', 'keychain', 'gcp_secret_manager', 'onepassword'];

export const secretSourcesSchema = z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected a name of a-z, 0-9, _ and -'), sourceSchema).default({});

export const sourcedSecretSchema = z
  .strictObject({
    from: text('the name of a secret_sources entry').min(1),
    id: text('the item at the source (a secret name, a parameter, a path)').min(1).max(2048),
    key: z.string().min(1).max(256).optional(),
    version: z.union([z.string().min(1).max(64), z.number().int().positive()]).optional(),
  })
  .transform((s): SourcedSecret => ({ kind: 'source', from: s.from, id: s.id, key: s.key, version: s.version === undefined ? undefined : String(s.version) }));

/**
 * store.key: \`file\` (data/master.key, the default: existing homes keep working) or a KMS key that
 * wraps the master key: \`{kms: aws, key_id: alias/keyway, region, endpoint, profile}\`. Beside the
 * secret sources because it is read the same way (the AWS SDK, keyway's environment).
 */
export const storeKeySchema = z
  .union([
    z.literal('file'),
    z.strictObject({
      kms: z.literal('aws'),
      // A key id, ARN, alias name (alias/keyway) or alias ARN: a symmetric encryption key.
      key_id: z.string().min(1).max(2048),
      ...aws,
    }),
    // Google Cloud KMS: the symmetric key key_id (projects/P/locations/L/keyRings/R/cryptoKeys/K).
    z.strictObject({
      kms: z.literal('gcp'),
      key_id: z
        .string()
        .regex(/^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/, 'expected projects/P/locations/L/keyRings/R/cryptoKeys/K'),
      credentials: secretRef.optional(),
      endpoint: endpoint.optional(),
    }),
    // Vault's transit engine: the key named key_id (a transit key) wraps the master key.
    z.strictObject({
      kms: z.literal('vault_transit'),
      key_id: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'expected a transit key name such as keyway'),
      address: endpoint.optional(),
      mount: z
        .string()
        .regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/, 'expected a mount path such as transit')
        .default('transit'),
      namespace: z.string().min(1).optional(),
      token: secretRef.optional(),
      approle: z.strictObject({ role_id: secretRef, secret_id: secretRef, mount: z.string().min(1).default('approle') }).optional(),
      kubernetes: kubernetesAuth.optional(),
    }),
  ])
  .default('file');

export type StoreKeyConfig = z.output<typeof storeKeySchema>;
export type KmsKeyConfig = Exclude<StoreKeyConfig, 'file'>;
