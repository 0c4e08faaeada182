import type { Logger } from 'pino';
import type { ListenAddress } from '../config/index.ts';
import type { Resolver } from '../egress/resolve.ts';

export interface StartOptions {
  home: string;
  configFile?: string | undefined;
  /** Overrides proxy.listen (keyway start --listen). */
  listen?: ListenAddress | undefined;
  /** Overrides admin.listen; tests pass port 0. */
  adminListen?: ListenAddress | undefined;
  /** The clock for policy (time windows, leases): tests pin it. */
  now?: (() => Date) | undefined;
  /** The clock for OAuth token expiry and refresh backoff (epoch ms): tests move it forward instead of sleeping. */
  tokenClock?: (() => number) | undefined;
  /** Replaces the system resolver (after proxy.hosts): tests script DNS answers with it. */
  dns?: Resolver | undefined;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /**
   * Record this proxy in data/running (and data/proxy.json, unless another live one is there) so
   * the CLI and clients find it (default true). `contain`: recorded for `status` and `stop` only,
   * never pointed at (it serves one `keyway run --contain` command). A proxy started for one
   * command (`keyway fetch` when none runs) keeps itself to itself: false.
   */
  announce?: boolean | 'contain' | undefined;
  /** `keyway fetch`'s own proxy: the one-time key its request must carry (ProxyRuntime.callerKey). */
  callerKey?: string | undefined;
}
