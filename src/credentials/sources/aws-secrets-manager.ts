// aws_secrets_manager: GetSecretValue through the AWS SDK v3 client, with its usual credential chain
// (environment, profile, web identity, instance role) and its signing. `version` is a version stage
// (AWSCURRENT, AWSPREVIOUS, a custom label) or, when it is a UUID, a version id.
import { GetSecretValueCommand, type GetSecretValueCommandOutput, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SecretSourceConfig, SourcedSecret } from '../../config/secret-sources.ts';
import { awsClientSettings, awsReason } from './aws-client.ts';
import { pickField, SourceFailure, type SourceReader } from './reader.ts';

type Config = Extract<SecretSourceConfig, { type: 'aws_secrets_manager' }>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function secretsManagerReader(config: Config, env: NodeJS.ProcessEnv): SourceReader {
  const client = new SecretsManagerClient({
    ...awsClientSettings(config, env),
    // keyway's own cache retries after failure_ttl; one SDK retry covers a dropped connection.
    maxAttempts: 2,
  });
  return {
    async fetch(item: SourcedSecret, signal: AbortSignal): Promise<string> {
      const version = item.version === undefined ? {} : UUID.test(item.version) ? { VersionId: item.version } : { VersionStage: item.version };
      let answer: GetSecretValueCommandOutput;
      try {
        answer = await client.send(new GetSecretValueCommand({ SecretId: item.id, ...version }), { abortSignal: signal });
      } catch (err) {
        throw new SourceFailure(awsReason(err));
      }
      const text = answer.SecretString ?? (answer.SecretBinary ? Buffer.from(answer.SecretBinary).toString('utf8') : undefined);
      if (text === undefined) throw new SourceFailure('the secret has no value');
      return pickField(text, item.key);
    },
  };
}
