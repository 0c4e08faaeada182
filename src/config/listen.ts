import { isIP } from 'node:net';

export interface ListenAddress {
  host: string;
  port: number;
}

/** "127.0.0.1:8787", "[::1]:8787", "0.0.0.0:8787", "localhost:0". */
export function parseListen(text: string): ListenAddress | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!match) return undefined;
  const host = match[1] ?? match[2] ?? '';
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  if (match[1] !== undefined && isIP(host) !== 6) return undefined;
  return { host, port };
}

export function formatListen({ host, port }: ListenAddress): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A wildcard listener is reached on loopback. */
export function reachable({ host, port }: ListenAddress): string {
  return formatListen({ host: host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host, port });
}

/** The proxy URL a client uses (`HTTPS_PROXY`), with an agent's credentials when given. */
export function proxyUrlFor(address: ListenAddress, credentials?: { id: string; key: string }): string {
  const auth = credentials ? `${encodeURIComponent(credentials.id)}:${encodeURIComponent(credentials.key)}@` : '';
  return `http://${auth}${reachable(address)}`;
}
