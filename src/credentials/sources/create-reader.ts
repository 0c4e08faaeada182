import type { SecretSourceConfig } from '../../config/secret-sources.ts';
import type { SourceReader } from './reader.ts';

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
