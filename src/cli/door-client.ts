import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { KeywayError } from '../errors/index.ts';
import { usageError } from './io.ts';

// The command line's side of keyway's delegation door (proxy/delegation-door.ts): an agent's
// process, holding only its own proxy URL (the one `keyway run` gave it), mints and revokes its own
// children through the proxy, never through the admin API nor the home's files. It trusts keyway's
// CA explicitly (the file keyway run points NODE_EXTRA_CA_CERTS at), never the system's: only keyway
// answers keyway.internal.

const DOOR_URL = 'https://keyway.internal/delegate';

/** Where the agent's proxy is, with its key, and the CA that proves keyway answers. */
export interface DoorAccess {
  /** http://ID:KEY@HOST:PORT */
  readonly proxyUrl: string;
  /** A PEM file holding keyway's CA. */
  readonly caFile: string;
}

/** The child as the door answers it. */
export interface MintedChild {
  id: string;
  key: string;
  parent: string;
  grants: string[] | null;
  chain: string[];
  expires_at: string;
  depth: number;
  proxy_url: string | null;
}

export interface MintFields {
  name: string;
  grants?: string[] | undefined;
  rules?: unknown;
  ttl?: string | undefined;
  depth?: number | undefined;
  budget?: string | undefined;
}

const PROXY_VARIABLES = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'] as const;
/** keyway's CA alone first (keyway run's NODE_EXTRA_CA_CERTS), then the bundles that hold it with the system's. */
const CA_VARIABLES = ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'CURL_CA_BUNDLE', 'REQUESTS_CA_BUNDLE'] as const;

/** The agent's proxy URL and keyway's CA, as `keyway run` set them; a clear usage error naming what is missing. */
export function doorAccessFrom(env: NodeJS.ProcessEnv): DoorAccess {
  const named = PROXY_VARIABLES.find((name) => env[name]);
  if (named === undefined) {
    throw usageError("no proxy URL: run this under `keyway run --agent ID` (or set HTTPS_PROXY to your agent's proxy URL, http://ID:KEY@HOST:PORT)");
  }
  let url: URL;
  try {
    url = new URL(env[named]!);
  } catch {
    throw usageError(`${named} is not a URL`);
  }
  if (url.protocol !== 'http:') throw usageError(`${named}: expected keyway's http:// proxy URL`);
  if (url.username === '' || url.password === '') {
    throw usageError(`${named} carries no agent key (expected http://ID:KEY@HOST:PORT): run this under \`keyway run --agent ID\``);
  }
  const ca = CA_VARIABLES.find((name) => env[name]);
  if (ca === undefined) throw usageError("no keyway CA: set NODE_EXTRA_CA_CERTS to keyway's certs/ca.pem (keyway run sets it)");
  return { proxyUrl: url.href, caFile: env[ca]! };
}

/** Mints a child of the proxy URL's agent; throws KeywayError with the door's code and message. */
export async function mintThroughDoor(access: DoorAccess, fields: MintFields): Promise<MintedChild> {
  const body = JSON.stringify(fields);
  return (await askDoor(access, 'POST', DOOR_URL, body)) as MintedChild;
}

/** Revokes ID (a descendant of the proxy URL's agent) and its descendants. */
export async function revokeThroughDoor(access: DoorAccess, id: string): Promise<{ removed: string[] }> {
  return (await askDoor(access, 'DELETE', `${DOOR_URL}/${encodeURIComponent(id)}`)) as { removed: string[] };
}

/** The proxy URL `access` names, with the child's id and key in place of the parent's. */
export function childProxyUrl(access: DoorAccess, child: { id: string; key: string }): string {
  const url = new URL(access.proxyUrl);
  url.username = encodeURIComponent(child.id);
  url.password = encodeURIComponent(child.key);
  return url.href.replace(/\/$/, '');
}

async function askDoor(access: DoorAccess, method: 'POST' | 'DELETE', url: string, body?: string): Promise<unknown> {
  let ca: string;
  try {
    ca = readFileSync(access.caFile, 'utf8');
  } catch (err) {
    throw usageError(`cannot read keyway's CA at ${access.caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const proxy = new URL(access.proxyUrl);
  const token = `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`;
  proxy.username = '';
  proxy.password = '';
  const dispatcher = new ProxyAgent({ uri: proxy.href, token, requestTls: { ca } });
  try {
    const answer = await request(url, {
      method,
      dispatcher,
      ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }),
    });
    const text = await answer.body.text();
    let parsed: { error?: { code?: string; message?: string } } & Record<string, unknown>;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new DoorRefused(`status ${answer.statusCode}`, 'keyway.internal answered without JSON: is this proxy keyway (a version with the delegation door)?');
    }
    if (answer.statusCode >= 200 && answer.statusCode < 300) return parsed;
    const code = parsed.error?.code ?? `status ${answer.statusCode}`;
    const retry = answer.headers['retry-after'];
    throw new DoorRefused(code, `${parsed.error?.message ?? 'refused'}${retry !== undefined ? ` (retry after ${String(retry)} s)` : ''}`);
  } catch (err) {
    if (err instanceof KeywayError || err instanceof DoorRefused) throw err;
    // undici says a refused CONNECT as "Proxy response (407) !== 200 when HTTP Tunneling".
    const status = /Proxy response \((\d{3})\)/.exec((err as Error).message)?.[1];
    if (status === '407') throw new DoorRefused('proxy_auth_required', "the proxy refused this agent's key (revoked, rotated or expired?)");
    if (status !== undefined) throw new DoorRefused(`status ${status}`, 'the proxy refused the connection to keyway.internal');
    throw usageError(`cannot reach keyway through ${proxy.host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
}

/** The door (or the proxy) said no: its code first on the line; the command exits 1 with it. */
export class DoorRefused extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(`${code}: ${message}`);
    this.name = 'DoorRefused';
    this.code = code;
  }
}
