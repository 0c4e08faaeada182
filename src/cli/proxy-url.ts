import type { Config } from '../config/index.ts';
import { formatListen } from '../config/index.ts';

/** The address clients should use: a wildcard listen address is reached on loopback. */
export function proxyAddress(config: Config): string {
  const { host, port } = config.proxy.listen;
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return formatListen({ host: reachable, port });
}

export function proxyUrl(config: Config, credentials?: { id: string; key: string }): string {
  const auth = credentials ? `${encodeURIComponent(credentials.id)}:${encodeURIComponent(credentials.key)}@` : '';
  return `http://${auth}${proxyAddress(config)}`;
}
