// What the two AWS readers (aws-secrets-manager.ts, aws-ssm.ts) and the store's KMS key wrap share:
// the SDK clients' settings from keyway's environment, and an SDK error's reason without a value.

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
