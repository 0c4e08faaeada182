// vault_kv: a KV v2 secret read over Vault's documented HTTP API (GET /v1/MOUNT/data/PATH; auth in
// vault-client.ts). Without `key`, a secret of one field gives that field; one of several gives its
// fields as a JSON object (the material of a basic or aws_sigv4 grant).
import type { SecretSourceConfig, SourcedSecret } from '../../config/secret-sources.ts';
import { fieldOf, SourceFailure, type SourceReader } from './reader.ts';
import { vaultClient } from './vault-client.ts';

type Config = Extract<SecretSourceConfig, { type: 'vault_kv' }>;

export function vaultKvReader(config: Config, env: NodeJS.ProcessEnv, baseDir: string): SourceReader {
  const vault = vaultClient(config, env, baseDir);
  return {
    async fetch(item: SourcedSecret, signal: AbortSignal): Promise<string> {
      const path = item.id.split('/').map(encodeURIComponent).join('/');
      const query = item.version === undefined ? '' : `?version=${encodeURIComponent(item.version)}`;
      const answer = await vault.call('GET', `${config.mount}/data/${path}${query}`, signal);
      const data = (answer['data'] as { data?: unknown } | undefined)?.data;
      if (typeof data !== 'object' || data === null) throw new SourceFailure('the secret has no data (deleted, or not a KV v2 secret)');
      if (item.key !== undefined) return fieldOf(data, item.key);
      const fields = Object.keys(data);
      return fields.length === 1 ? fieldOf(data, fields[0]!) : JSON.stringify(data);
    },
  };
}
