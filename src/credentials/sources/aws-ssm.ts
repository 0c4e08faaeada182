// aws_ssm: GetParameter (decrypted: a SecureString comes back in clear to keyway alone) through the
// AWS SDK v3 client and its usual credential chain. `version` selects NAME:VERSION (a number or a label).
import { GetParameterCommand, type GetParameterCommandOutput, SSMClient } from '@aws-sdk/client-ssm';
import type { SecretSourceConfig, SourcedSecret } from '../../config/secret-sources.ts';
import { awsClientSettings, awsReason } from './aws-client.ts';
import { pickField, SourceFailure, type SourceReader } from './reader.ts';

type Config = Extract<SecretSourceConfig, { type: 'aws_ssm' }>;

export function ssmReader(config: Config, env: NodeJS.ProcessEnv): SourceReader {
  const client = new SSMClient({ ...awsClientSettings(config, env), maxAttempts: 2 });
  return {
    async fetch(item: SourcedSecret, signal: AbortSignal): Promise<string> {
      const name = item.version === undefined ? item.id : `${item.id}:${item.version}`;
      let answer: GetParameterCommandOutput;
      try {
        answer = await client.send(new GetParameterCommand({ Name: name, WithDecryption: true }), { abortSignal: signal });
      } catch (err) {
        throw new SourceFailure(awsReason(err));
      }
      const text = answer.Parameter?.Value;
      if (text === undefined) throw new SourceFailure('the parameter has no value');
      return pickField(text, item.key);
    },
  };
}
