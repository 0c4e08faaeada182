// Vault's documented HTTP API, as keyway reads secrets (vault_kv) and wraps its master key
// (store.key: {kms: vault_transit}): no client library needed. Auth by token (a reference, else
// VAULT_TOKEN), AppRole or Kubernetes (POST /v1/auth/MOUNT/login, the pod's service account token; the client token kept until 80% of its lease,
// and logged in again when Vault answers 403). Errors carry Vault's own words, which name a path or
// a permission, never a secret.
import { readFile } from 'node:fs/promises';
import { request } from 'undici';
import { ENDPOINT_RULE, endpointAllowed } from '../../config/sourced-secret.ts';
import { readSecretRef, type SecretRef } from '../../config/secret-ref.ts';
import { SourceFailure } from './reader.ts';

export interface VaultSettings {
  address?: string | undefined;
  namespace?: string | undefined;
  token?: SecretRef | undefined;
  approle?: { role_id: SecretRef; secret_id: SecretRef; mount: string } | undefined;
  kubernetes?: { role: string; mount: string; token_file: string } | undefined;
}

export interface VaultClient {
  /** One authenticated call; `path` under /v1/. */
  call(method: 'GET' | 'POST', path: string, signal: AbortSignal, body?: unknown): Promise<Record<string, unknown>>;
}

export function vaultClient(settings: VaultSettings, env: NodeJS.ProcessEnv, baseDir: string): VaultClient {
  const address = (settings.address ?? env['VAULT_ADDR'] ?? '').replace(/\/+$/, '');
  const namespace = settings.namespace ?? env['VAULT_NAMESPACE'];
  let login: { token: string; renewAt: number } | undefined;

  const send = async (method: 'GET' | 'POST', path: string, signal: AbortSignal, token?: string, body?: unknown): Promise<Record<string, unknown>> => {
    if (address === '') throw new SourceFailure('no Vault address: set the address in the config or VAULT_ADDR');
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
      throw new SourceFailure(e.name === 'AbortError' ? 'no answer within the timeout' : `Vault cannot be reached (${e.code ?? e.name ?? 'error'})`);
    }
    const text = await answer.body.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // An answer that is not JSON: its status says enough.
    }
    if (answer.statusCode !== 200) {
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

  /** A login (AppRole or Kubernetes): its client token, kept until 80% of its lease. */
  const logIn = async (mount: string, body: Record<string, string>, what: string, signal: AbortSignal): Promise<string> => {
    const answer = await send('POST', `auth/${mount}/login`, signal, undefined, body);
    const auth = answer['auth'] as { client_token?: string; lease_duration?: number } | undefined;
    if (!auth?.client_token) throw new SourceFailure(`the ${what} login gave no client token`);
    login = { token: auth.client_token, renewAt: Date.now() + Math.max(1, auth.lease_duration ?? 60) * 800 };
    return login.token;
  };

  const tokenFor = async (signal: AbortSignal): Promise<string> => {
    const kubernetes = settings.kubernetes;
    if (kubernetes !== undefined) {
      if (login !== undefined && Date.now() < login.renewAt) return login.token;
      // Read at each login: the kubelet rotates the projected token.
      const jwt = (await readFile(kubernetes.token_file, 'utf8').catch(() => '')).trim();
      if (jwt === '') throw new SourceFailure(`the service account token ${kubernetes.token_file} cannot be read`);
      return logIn(kubernetes.mount, { role: kubernetes.role, jwt }, 'Kubernetes', signal);
    }
    if (settings.approle === undefined) {
      const token = settings.token ? readSecretRef(settings.token, env, baseDir) : env['VAULT_TOKEN'];
      if (!token) throw new SourceFailure('no Vault token: set token (env:NAME or file:PATH), VAULT_TOKEN, or approle');
      return token;
    }
    if (login !== undefined && Date.now() < login.renewAt) return login.token;
    const role_id = readSecretRef(settings.approle.role_id, env, baseDir);
    const secret_id = readSecretRef(settings.approle.secret_id, env, baseDir);
    return logIn(settings.approle.mount, { role_id, secret_id }, 'AppRole', signal);
  };

  return {
    async call(method, path, signal, body) {
      const token = await tokenFor(signal);
      try {
        return await send(method, path, signal, token, body);
      } catch (err) {
        // A token Vault no longer takes: the next call logs in again.
        if (err instanceof SourceFailure && /answered 403/.test(err.message)) login = undefined;
        throw err;
      }
    },
  };
}
