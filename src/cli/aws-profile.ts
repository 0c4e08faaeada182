import { homedir } from 'node:os';
import { join } from 'node:path';
import { loadSharedConfigFiles } from '@smithy/shared-ini-file-loader';
import { KeywayError } from '../errors/index.ts';

// `keyway grants add ID --type aws_sigv4 --from-aws-profile NAME`: the key of a profile in the AWS
// shared files (~/.aws/credentials, ~/.aws/config, or AWS_SHARED_CREDENTIALS_FILE and
// AWS_CONFIG_FILE), read with AWS's own parser (@smithy/shared-ini-file-loader) as the CLI and the
// SDKs read them. Only a static key is imported; messages never quote a value.

export interface AwsProfileKey {
  /** The aws_sigv4 material: the JSON `keyway secrets set` takes. */
  material: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

export async function readAwsProfile(name: string, env: NodeJS.ProcessEnv): Promise<AwsProfileKey> {
  const home = env['HOME'] ?? homedir();
  const filepath = env['AWS_SHARED_CREDENTIALS_FILE'] ?? join(home, '.aws', 'credentials');
  const configFilepath = env['AWS_CONFIG_FILE'] ?? join(home, '.aws', 'config');
  const { credentialsFile, configFile } = await loadSharedConfigFiles({ filepath, configFilepath, ignoreCache: true });
  const fromCredentials = credentialsFile[name];
  const fromConfig = configFile[name];
  if (fromCredentials === undefined && fromConfig === undefined) {
    throw new KeywayError('usage', `--from-aws-profile: no profile "${name.slice(0, 64)}" in ${filepath} or ${configFilepath}`);
  }
  const profile = { ...fromConfig, ...fromCredentials };
  const accessKeyId = profile['aws_access_key_id'];
  const secretAccessKey = profile['aws_secret_access_key'];
  if (!accessKeyId || !secretAccessKey) {
    const kind = profile['role_arn'] ? 'assumes a role' : profile['sso_session'] || profile['sso_start_url'] ? 'signs in with SSO' : 'has no access key';
    throw new KeywayError(
      'usage',
      `--from-aws-profile: profile "${name.slice(0, 64)}" ${kind}; keyway imports a profile's static key (aws_access_key_id and aws_secret_access_key)`,
    );
  }
  const sessionToken = profile['aws_session_token'];
  return { material: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } };
}
