// How one secret source is read: each type is one file here, built from its config entry. A reader
// fetches one item's text; the cache around it (source-secrets.ts) decides when. A reader's errors
// say why in words that never quote a value (SourceFailure), since they reach audit lines and logs.
import type { SecretSourceConfig, SourcedSecret } from '../../config/secret-sources.ts';

export interface SourceReader {
  /** The item's text: the value, or the field `item.key` of a JSON value. */
  fetch(item: SourcedSecret, signal: AbortSignal): Promise<string>;
}

/** A fetch that failed, with a reason fit for an audit line (the source's error code and message, never a value). */
export class SourceFailure extends Error {}

/** The reader of a source's type; its SDK or client is loaded only here, when a source of that type is configured. */
export async function createReader(config: SecretSourceConfig, env: NodeJS.ProcessEnv, baseDir: string): Promise<SourceReader> {
  switch (config.type) {
    case 'aws_secrets_manager':
      return (await import('./aws-secrets-manager.ts')).secretsManagerReader(config, env);
    case 'aws_ssm':
      return (await import('./aws-ssm.ts')).ssmReader(config, env);
    case 'vault_kv':
      return (await import('./vault-kv.ts')).vaultKvReader(config, env, baseDir);
    case 'gcp_secret_manager':
      return (await import('./gcp-secret-manager.ts')).gcpSecretManagerReader(config, env, baseDir);
    case 'keychain':
      return (await import('./keychain.ts')).keychainReader(config, env);
    case 'onepassword':
      return (await import('./onepassword.ts')).onePasswordReader(config, env, baseDir);
  }
}

/**
 * The field `key` of a JSON object's text, as a string (a number or boolean as JSON writes it), or
 * the text itself when no key is asked for. A value that is not JSON, or has no such field, fails
 * without quoting it.
 */
export function pickField(text: string, key: string | undefined): string {
  if (key === undefined) return text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SourceFailure(`the value is not a JSON object, so it has no field "${key}"`);
  }
  return fieldOf(parsed, key);
}

/** A field of an object already parsed (Vault's data), as pickField gives it. */
export function fieldOf(parsed: unknown, key: string): string {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new SourceFailure(`the value is not a JSON object, so it has no field "${key}"`);
  if (!Object.hasOwn(parsed, key)) {
    const fields = Object.keys(parsed).slice(0, 20);
    throw new SourceFailure(`the value has no field "${key}" (its fields: ${fields.join(', ') || 'none'})`);
  }
  const value = (parsed as Record<string, unknown>)[key];
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  throw new SourceFailure(`the field "${key}" is empty`);
}

/** The reason of an AWS SDK error: its code and message, which name the item and never hold its value. */
export function awsReason(err: unknown): string {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError') return "no answer within the source's timeout";
  const status = e?.$metadata?.httpStatusCode;
  const message = (e?.message ?? String(err)).split('\n')[0]!.slice(0, 200);
  return `${e?.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}: ${message}`;
}

/**
 * The AWS clients' settings from a source and keyway's environment (the one it started with, which
 * a test or an embedding may give apart from process.env): a key there is used as the SDK's
 * environment provider would; without one, with a profile or not, the SDK's own chain decides.
 */
export function awsClientSettings(
  config: { region?: string | undefined; endpoint?: string | undefined; profile?: string | undefined },
  env: NodeJS.ProcessEnv,
): { region?: string; endpoint?: string; profile?: string; credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } } {
  const region = config.region ?? env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'];
  const accessKeyId = env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey = env['AWS_SECRET_ACCESS_KEY'];
  const sessionToken = env['AWS_SESSION_TOKEN'];
  const fromEnv = config.profile === undefined && accessKeyId && secretAccessKey;
  return {
    ...(region ? { region } : {}),
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.profile ? { profile: config.profile } : {}),
    ...(fromEnv ? { credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } } : {}),
  };
}
