import { upstreamCaPendingRestart } from '../egress/upstream-errors.ts';
import type { ProxyRuntime } from './runtime.ts';

/** Whether proxy.upstream_ca changed since start (a reload took it, the upstream did not): the 502's hint says restart. */
export function caPendingRestart(runtime: ProxyRuntime): boolean {
  return upstreamCaPendingRestart(runtime.upstream.extraCaFiles, runtime.config.proxy.upstream_ca, runtime.config.home);
}
