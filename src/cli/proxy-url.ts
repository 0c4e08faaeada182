import type { Config } from '../config/index.ts';
import { proxyUrlFor, reachable } from '../config/index.ts';
import { keywayPaths } from '../paths.ts';
import { findRunningProxy } from '../running-proxy.ts';

/**
 * The address clients should use: where a proxy running on this home says it listens (it may have
 * been started with --listen, or on port 0), else proxy.listen. A wildcard address is reached on loopback.
 */
export function proxyAddress(config: Config): string {
  return reachable(findRunningProxy(keywayPaths(config).runningProxy)?.proxy ?? config.proxy.listen);
}

/**
 * The same for the admin API; undefined when admin.listen has port 0 (chosen at start) and no
 * running proxy announced the port it got.
 */
export function adminAddress(config: Config): string | undefined {
  const listen = findRunningProxy(keywayPaths(config).runningProxy)?.admin ?? config.admin.listen;
  return listen.port === 0 ? undefined : reachable(listen);
}

export function proxyUrl(config: Config, credentials?: { id: string; key: string }): string {
  return proxyUrlFor(findRunningProxy(keywayPaths(config).runningProxy)?.proxy ?? config.proxy.listen, credentials);
}

export { reachable };
