// Secret stores keyway reads, as doubles of their wire protocols (moto cannot be installed here:
// PyPI is out of reach and Debian 12 has no python3-moto; Vault is in neither registry):
// - AWS Secrets Manager and SSM Parameter Store: the AWS JSON protocol over plain HTTP on loopback,
//   as moto's server mode serves it, each request's SigV4 signature checked (aws-json-double.ts,
//   sigv4-verifier.ts) and a wrong key refused.
// - Vault's KV v2 HTTP API: GET /v1/MOUNT/data/PATH with X-Vault-Token (a wrong token is 403
//   "permission denied", as Vault answers), and AppRole login.
// Each can be paused (stops listening, drops connections) and resumed on the same port.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type AwsJsonDouble, AwsJsonError, startAwsJsonDouble } from './aws-json-double.ts';
import type { AwsKey } from './sigv4-verifier.ts';

export interface AwsSecretsDouble extends AwsJsonDouble {
  /** Secrets Manager's secrets and SSM's parameters, by name: change them to change what is served. */
  values: Map<string, string>;
}

/** Secrets Manager (`secretsmanager.GetSecretValue`) over plain HTTP, signatures checked. */
export function startSecretsManagerDouble(keys: AwsKey[], values: Map<string, string>): Promise<AwsSecretsDouble> {
  return startAwsJsonDouble({
    keys,
    service: 'secretsmanager',
    plain: true,
    handler: (call) => {
      if (call.target !== 'secretsmanager.GetSecretValue') throw new AwsJsonError(400, 'UnknownOperationException', call.target);
      const id = (call.body as { SecretId?: string }).SecretId ?? '';
      const value = values.get(id);
      if (value === undefined) throw new AwsJsonError(400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
      return { ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${id}`, Name: id, SecretString: value, VersionStages: ['AWSCURRENT'] };
    },
  }).then((double) => Object.assign(double, { values }));
}

/** SSM Parameter Store (`AmazonSSM.GetParameter`) over plain HTTP, signatures checked. */
export function startSsmDouble(keys: AwsKey[], values: Map<string, string>): Promise<AwsSecretsDouble> {
  return startAwsJsonDouble({
    keys,
    service: 'ssm',
    plain: true,
    handler: (call) => {
      if (call.target !== 'AmazonSSM.GetParameter') throw new AwsJsonError(400, 'UnknownOperationException', call.target);
      const body = call.body as { Name?: string; WithDecryption?: boolean };
      const value = values.get(body.Name ?? '');
      if (value === undefined) throw new AwsJsonError(400, 'ParameterNotFound', '');
      return { Parameter: { Name: body.Name, Type: 'SecureString', Value: body.WithDecryption ? value : 'AQICAH-encrypted', Version: 1 } };
    },
  }).then((double) => Object.assign(double, { values }));
}

export interface VaultDouble {
  url: string;
  /** KV v2 secrets by path under the mount `secret`: their fields. */
  secrets: Map<string, Record<string, string>>;
  /** Every request: path and whether its token was taken. */
  calls: Array<{ path: string; allowed: boolean }>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Vault's KV v2 read, its transit engine's datakey/encrypt/decrypt (for the transit keys named), and
 * AppRole login, for one token (and the tokens AppRole logins issue). A transit ciphertext is this
 * double's own, `vault:v1:` then base64 of nonce, AES-256-GCM ciphertext and tag.
 */
export async function startVaultDouble(options: {
  token: string;
  approle?: { roleId: string; secretId: string };
  /** Kubernetes auth: the role and the service account token its login takes. */
  kubernetes?: { role: string; jwt: string };
  transitKeys?: string[];
}): Promise<VaultDouble> {
  const transit = new Map((options.transitKeys ?? []).map((name) => [name, randomBytes(32)]));
  const seal = (name: string, plaintext: Buffer) => {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', transit.get(name)!, nonce);
    return `vault:v1:${Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]).toString('base64')}`;
  };
  const open = (name: string, text: string): Buffer | undefined => {
    try {
      const blob = Buffer.from(text.replace(/^vault:v1:/, ''), 'base64');
      const decipher = createDecipheriv('aes-256-gcm', transit.get(name)!, blob.subarray(0, 12));
      decipher.setAuthTag(blob.subarray(blob.length - 16));
      return Buffer.concat([decipher.update(blob.subarray(12, blob.length - 16)), decipher.final()]);
    } catch {
      return undefined;
    }
  };
  const secrets = new Map<string, Record<string, string>>();
  const calls: VaultDouble['calls'] = [];
  const tokens = new Set([options.token]);
  let issued = 0;
  const answer = (res: import('node:http').ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
    const url = new URL(req.url ?? '/', 'http://vault');
    if (req.method === 'POST' && url.pathname === '/v1/auth/approle/login') {
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as { role_id?: string; secret_id?: string };
      const ok = options.approle !== undefined && body.role_id === options.approle.roleId && body.secret_id === options.approle.secretId;
      calls.push({ path: url.pathname, allowed: ok });
      if (!ok) return answer(res, 400, { errors: ['invalid role or secret ID'] });
      const token = `hvs.approle-${++issued}`;
      tokens.add(token);
      return answer(res, 200, { auth: { client_token: token, lease_duration: 3600, renewable: true } });
    }
    if (req.method === 'POST' && url.pathname === '/v1/auth/kubernetes/login') {
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as { role?: string; jwt?: string };
      const ok = options.kubernetes !== undefined && body.role === options.kubernetes.role && body.jwt === options.kubernetes.jwt;
      calls.push({ path: url.pathname, allowed: ok });
      if (!ok) return answer(res, 403, { errors: ['permission denied'] });
      const token = `hvs.k8s-${++issued}`;
      tokens.add(token);
      return answer(res, 200, { auth: { client_token: token, lease_duration: 3600, renewable: true } });
    }
    const allowed = tokens.has(String(req.headers['x-vault-token'] ?? ''));
    calls.push({ path: url.pathname, allowed });
    if (!allowed) return answer(res, 403, { errors: ['permission denied'] });
    const transitCall = /^\/v1\/transit\/(datakey\/plaintext|encrypt|decrypt)\/([A-Za-z0-9_.-]+)$/.exec(url.pathname);
    if (req.method === 'POST' && transitCall) {
      const [, operation, name] = transitCall as unknown as [string, string, string];
      if (!transit.has(name)) return answer(res, 400, { errors: [`encryption key not found`] });
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as { plaintext?: string; ciphertext?: string };
      if (operation === 'datakey/plaintext') {
        const key = randomBytes(32);
        return answer(res, 200, { data: { plaintext: key.toString('base64'), ciphertext: seal(name, key) } });
      }
      if (operation === 'encrypt') return answer(res, 200, { data: { ciphertext: seal(name, Buffer.from(body.plaintext ?? '', 'base64')) } });
      const plain = open(name, body.ciphertext ?? '');
      return plain
        ? answer(res, 200, { data: { plaintext: plain.toString('base64') } })
        : answer(res, 400, { errors: ['cipher: message authentication failed'] });
    }
    const match = /^\/v1\/secret\/data\/(.+)$/.exec(url.pathname);
    const data = match ? secrets.get(decodeURIComponent(match[1]!)) : undefined;
    if (req.method !== 'GET' || data === undefined) return answer(res, 404, { errors: [] });
    return answer(res, 200, { data: { data, metadata: { version: 1, created_time: new Date().toISOString() } } });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    url: `http://127.0.0.1:${port}`,
    secrets,
    calls,
    close,
    pause: close,
    resume: async () => {
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
    },
  };
}

export interface ConnectDouble {
  url: string;
  /** Vault title -> item title -> its fields (label -> value; the label "password" has purpose PASSWORD). */
  vaults: Map<string, Map<string, Record<string, string>>>;
  calls: Array<{ path: string; allowed: boolean }>;
  close(): Promise<void>;
}

/** 1Password Connect's REST API for reading items: vaults and items listed by title filter, an item whole; a wrong token is 401. */
export async function startConnectDouble(token: string): Promise<ConnectDouble> {
  const vaults = new Map<string, Map<string, Record<string, string>>>();
  const calls: ConnectDouble['calls'] = [];
  const idFor = (title: string) => Buffer.from(title).toString('hex').padEnd(26, '0').slice(0, 26);
  const titleFilter = (url: URL) => /^title eq "(.*)"$/.exec(url.searchParams.get('filter') ?? '')?.[1];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://connect');
    const allowed = req.headers.authorization === `Bearer ${token}`;
    calls.push({ path: url.pathname, allowed });
    const answer = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (!allowed) return answer(401, { status: 401, message: 'Invalid token signature' });
    const vaultOf = (id: string) => [...vaults].find(([title]) => idFor(title) === id);
    if (url.pathname === '/v1/vaults') {
      const title = titleFilter(url);
      return answer(
        200,
        [...vaults.keys()].filter((t) => title === undefined || t === title).map((t) => ({ id: idFor(t), name: t })),
      );
    }
    const items = /^\/v1\/vaults\/([a-z0-9]+)\/items$/.exec(url.pathname);
    if (items) {
      const vault = vaultOf(items[1]!);
      if (!vault) return answer(404, { status: 404, message: 'vault not found' });
      const title = titleFilter(url);
      return answer(
        200,
        [...vault[1].keys()].filter((t) => title === undefined || t === title).map((t) => ({ id: idFor(t), title: t })),
      );
    }
    const one = /^\/v1\/vaults\/([a-z0-9]+)\/items\/([a-z0-9]+)$/.exec(url.pathname);
    const vault = one ? vaultOf(one[1]!) : undefined;
    const item = vault ? [...vault[1]].find(([title]) => idFor(title) === one![2]) : undefined;
    if (!item) return answer(404, { status: 404, message: 'item not found' });
    const fields = Object.entries(item[1]).map(([label, value], i) => ({
      id: `f${i}`,
      label,
      value,
      ...(label === 'password' ? { purpose: 'PASSWORD' } : {}),
    }));
    return answer(200, { id: idFor(item[0]), title: item[0], fields, sections: [] });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    vaults,
    calls,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
