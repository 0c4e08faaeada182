import type { Renewer } from '../issuing/renewer.ts';
import type { Logger } from 'pino';
import type { Config } from '../../config/index.ts';
import type { Dispatcher } from '../../net/undici.ts';
import { TokenManager } from '../issuing/oauth-tokens.ts';
import type { TokenObserver, TokenStore } from '../issuing/token-store.ts';
import { findProvider, registeredEndpoint, tokenEndpointFor } from './provider-registry.ts';

export interface ConfigTokensOptions {
  store: TokenStore;
  /** Where the per-grant refresh locks live (data/locks): shared by the proxy and `keyway refresh`. */
  lockDir: string;
  env: NodeJS.ProcessEnv;
  /** How token endpoints are reached: like upstreams (proxy.hosts, system CAs plus proxy.upstream_ca). */
  dispatcher: Dispatcher;
  logger?: Logger | undefined;
  /** The clock for token expiry and refresh backoff (epoch ms); tests move it instead of sleeping. */
  now?: (() => number) | undefined;
  /** Hears of token endpoint calls and refreshes (the proxy's metrics). */
  observer?: TokenObserver | undefined;
}

/**
 * The TokenManager as the config sets it up: each grant's token endpoint from its provider (a
 * preset or the config's), the config's refresh skew and token timeout. The proxy (app/) and
 * `keyway refresh` build it here, so both refresh a grant the same way under the same lock.
 */
export function tokenManagerFor(config: Config | (() => Config), options: ConfigTokensOptions, renewer?: Renewer): TokenManager {
  // The proxy passes the config in force (a reload may change providers); the skew and timeout are
  // the start's, like the token-endpoint client they go with.
  const current = typeof config === 'function' ? config : () => config;
  const { oauth } = current();
  return new TokenManager(
    {
      store: options.store,
      lockDir: options.lockDir,
      endpointFor: (grant) => {
        const registered = registeredEndpoint(grant);
        if (registered) return registered;
        const provider = grant.provider === undefined ? undefined : findProvider(current(), grant.provider, options.env);
        return provider ? tokenEndpointFor(provider, grant) : undefined;
      },
      skewMs: oauth.refresh_skew,
      timeoutMs: oauth.token_timeout,
      dispatcher: options.dispatcher,
      logger: options.logger,
      observer: options.observer,
      ...(options.now ? { now: options.now } : {}),
    },
    renewer,
  );
}
