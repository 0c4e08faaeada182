// Where an agent may go: the rules on a destination that CONNECT and plain http:// requests share.
import { isIP } from 'node:net';
import { egressProxyRefused } from '../egress/egress-self.ts';
import { isLocalAddress } from '../egress/local-addresses.ts';
import { ProxyError } from '../errors/index.ts';
import { patternMatches } from '../policy/domains.ts';
import type { Decisions, Transport } from './contract.ts';
import { formatAuthority, type Target } from './target.ts';

/**
 * A host no grant covers, under proxy.unmatched deny, unless proxy.allow_tunnel names it.
 * The one rule for CONNECT and for requests (plain http://, or inside an intercepted connection).
 */
export function refuseUnmatched(runtime: Pick<Decisions, 'config'>, target: Target): void {
  if (runtime.config.proxy.unmatched !== 'deny') return;
  if (runtime.config.proxy.allow_tunnel.some((p) => patternMatches(p, target.host, target.port))) return;
  throw new ProxyError('host_not_allowed', `no grant covers ${target.host} and proxy.unmatched is deny`, {
    hint: 'add the host to proxy.allow_tunnel to let it through untouched',
  });
}

/**
 * The destination itself. An IP literal is checked now (no lookup will happen for it); a
 * name is checked when its one lookup answers, at connect time. keyway's own ports, and those of
 * every other keyway on this host (listener-registry.ts), on a local address are refused whatever
 * proxy.allow_networks says, in any spelling of the address (::ffff:7f00:1 and
 * 0:0:0:0:0:ffff:7f00:0001 are 127.0.0.1: isLocalAddress folds them first). A DNS name on one of
 * those port numbers is refused too: the connection makes its own lookup later, which a name the
 * agent controls can answer with 127.0.0.1 (DNS rebinding), and only this stage knows the port. A
 * proxy.hosts entry always answers the same, so it is judged.
 */
export async function checkDestination(runtime: Decisions & Pick<Transport, 'resolve' | 'upstream'>, target: Target): Promise<void> {
  const literal = isIP(target.host) !== 0;
  const listenerPort = runtime.ownPorts.has(target.port) || runtime.listeners.mayListenOn(target.port);
  // The company proxy (egress.proxy) is no destination either (egress-self.ts). Judged here for an
  // early 403, on the one port it listens on; its tunnel judges again on the address it asks for.
  const egressSelf = runtime.upstream.egress?.self;
  if (egressSelf?.onPort(target.port)) {
    // A name keyway cannot resolve (egress.connect_to: name) is compared by name; a refused address is refused here.
    const address = await runtime.resolve(target.host).then(
      (resolved) => resolved.address,
      (err: unknown) => {
        if (err instanceof ProxyError && err.code === 'host_not_allowed') throw err;
        return undefined;
      },
    );
    if (await egressSelf.is(target.host, address, target.port)) throw egressProxyRefused(formatAuthority(target));
  }
  if (!literal && !listenerPort) return;
  if (literal && isLocalAddress(target.host)) refuseListener(runtime, target);
  if (listenerPort && !literal && !Object.keys(runtime.config.proxy.hosts).some((name) => name.toLowerCase() === target.host)) {
    throw new ProxyError(
      'host_not_allowed',
      `port ${target.port} is a keyway listener's, and ${target.host} could resolve to this host by the time the connection is made`,
      {
        hint: 'map the name in proxy.hosts to pin its address',
      },
    );
  }
  const { address } = await runtime.resolve(target.host);
  if (!literal && isLocalAddress(address)) refuseListener(runtime, target);
}

/**
 * Throws if a keyway listens on the target's port (the target is a local address). Any local
 * address, not only the one the listener is bound to: a wildcard bind answers on all of them, and
 * refusing a port on an address it does not answer on costs nothing.
 */
function refuseListener(runtime: Decisions, target: Target): void {
  if (runtime.ownPorts.has(target.port)) throw new ProxyError('host_not_allowed', `${formatAuthority(target)} is keyway's own listener`);
  const other = runtime.listeners.listenerOn(target.port);
  if (other) throw new ProxyError('host_not_allowed', `${formatAuthority(target)} is another keyway's ${other.kind} listener on this host`);
}
