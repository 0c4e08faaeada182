// vault_kv: a KV v2 secret read over Vault's documented HTTP API (GET /v1/MOUNT/data/PATH), so no
// Vault client library is needed. Auth by token (the config's reference, else VAULT_TOKEN) or by
// AppRole (POST /v1/auth/approle/login; the client token is kept until 80% of its lease, then
// logged in again). Without `key`, a secret of one field gives that field; one of several gives its
// fields as a JSON object (the material of a basic or aws_sigv4 grant).
import { request } from 'undici';
import { ENDPOINT_RULE, endpointAllowed, type SecretSourceConfig, type SourcedSecret } from '../../config/secret-sources.ts';
import { readSecretRef } from '../../config/secret-ref.ts';
import { fieldOf, SourceFailure, type SourceReader } from './reader.ts';

type Config = Extract<SecretSourceConfig, { type: 'vault_kv' }>;

interface Login {
  token: string;
  renewAt: number;
}

export function vaultKvReader(config: Config, env: NodeJS.ProcessEnv, baseDir: string): SourceReader {
  const address = (config.address ?? env['VAULT_ADDR'] ?? '').replace(/\/+$/, '');
  const namespace = config.namespace ?? env['VAULT_NAMESPACE'];
  let login: Login | undefined;

  const call = async (method: 'GET' | 'POST', path: string, signal: AbortSignal, token?: string, body?: unknown): Promise<Record<string, unknown>> => {
    if (address === '') throw new SourceFailure("no Vault address: set the source's address or VAULT_ADDR");
    // VAULT_ADDR is held to the config's rule: the token and the secret would cross the network in clear.
    if (!endpointAllowed(address)) throw new SourceFailure(`VAULT_ADDR: ${ENDPOINT_RULE}`);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token !== undefined) headers['x-vault-token'] = token;
    if (namespace) headers['x-vault-namespace'] = namespace;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let answer: Awaited<ReturnType<typeof request>>;
    try {
      answer = await request(`${address}/v1/${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (err) {
      const e = err as { name?: string; code?: string };
      throw new SourceFailure(e.name === 'AbortError' ? "no answer within the source's timeout" : `Vault cannot be reached (${e.code ?? e.name ?? 'error'})`);
    }
    const text = await answer.body.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // An answer that is not JSON: its status says enough.
    }
    if (answer.statusCode !== 200) {
      // Vault's own errors name the path or the permission, never a secret's value.
      const errors = Array.isArray(parsed['errors'])
        ? (parsed['errors'] as unknown[])
            .filter((e) => typeof e === 'string')
            .join('; ')
            .slice(0, 200)
        : '';
      throw new SourceFailure(`Vault answered ${answer.statusCode}${errors ? `: ${errors}` : ''}`);
    }
    return parsed;
  };

  const tokenFor = async (signal: AbortSignal): Promise<string> => {
    if (config.approle === undefined) {
      const token = config.token ? readSecretRef(config.token, env, baseDir) : env['VAULT_TOKEN'];
      if (!token) throw new SourceFailure("no Vault token: set the source's token (env:NAME or file:PATH), VAULT_TOKEN, or approle");
      return token;
    }
    if (login !== undefined && Date.now() < login.renewAt) return login.token;
    const role_id = readSecretRef(config.approle.role_id, env, baseDir);
    const secret_id = readSecretRef(config.approle.secret_id, env, baseDir);
    const answer = await call('POST', `auth/${config.approle.mount}/login`, signal, undefined, { role_id, secret_id });
    const auth = answer['auth'] as { client_token?: string; lease_duration?: number } | undefined;
    if (!auth?.client_token) throw new SourceFailure('the AppRole login gave no client token');
    login = { token: auth.client_token, renewAt: Date.now() + Math.max(1, auth.lease_duration ?? 60) * 800 };
    return login.token;
  };

  return {
    async fetch(item: SourcedSecret, signal: AbortSignal): Promise<string> {
      const path = item.id.split('/').map(encodeURIComponent).join('/');
      const query = item.version === undefined ? '' : `?version=${encodeURIComponent(item.version)}`;
      const token = await tokenFor(signal);
      let answer: Record<string, unknown>;
      try {
        answer = await call('GET', `${config.mount}/data/${path}${query}`, signal, token);
      } catch (err) {
        // A token Vault no longer takes: the next fetch logs in again.
        if (err instanceof SourceFailure && /answered 403/.test(err.message)) login = undefined;
        throw err;
      }
      const data = (answer['data'] as { data?: unknown } | undefined)?.data;
      if (typeof data !== 'object' || data === null) throw new SourceFailure('the secret has no data (deleted, or not a KV v2 secret)');
      if (item.key !== undefined) return fieldOf(data, item.key);
      const fields = Object.keys(data);
      return fields.length === 1 ? fieldOf(data, fields[0]!) : JSON.stringify(data);
    },
  };
}
