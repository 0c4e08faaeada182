import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { ProxyError } from '../errors/index.ts';
import { canonicalAddress } from '../policy/address.ts';
import { isLocalAddress } from './local-addresses.ts';

// The company proxy (egress.proxy) is never a destination for an agent. Where proxy.allow_networks
// covers its address, an agent asking for it would get a raw connection to the proxy itself, opened
// by keyway (through the proxy: with keyway's own proxy login), and could then use the proxy as
// keyway, past every check keyway makes. keyway's own connections never need it either.
// Decided on addresses, as keyway's own listeners are (proxy/destination.ts): the proxy's port on
// any of the addresses its name has, in any spelling; and when the proxy is on this host, that port
// on every local address (a wildcard bind answers on all of them).

export class EgressProxySelf {
  readonly #host: string;
  readonly #port: number;
  readonly #lookup: (host: string) => Promise<string[]>;

  constructor(url: URL, resolveAll: (host: string) => Promise<string[]> = lookupAll) {
    this.#host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    this.#port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    this.#lookup = resolveAll;
  }

  /** Cheap: only a destination on this port can be the proxy, so only then is anything looked up. */
  onPort(port: number): boolean {
    return port === this.#port;
  }

  /** Whether host (a name as asked), at `address` (what keyway resolved it to, if it did), and port is the proxy. */
  async is(host: string, address: string | undefined, port: number): Promise<boolean> {
    if (port !== this.#port) return false;
    if (
      host
        .toLowerCase()
        .replace(/^\[|\]$/g, '')
        .replace(/\.$/, '') === this.#host
    )
      return true;
    if (address === undefined) return false;
    const target = canonicalAddress(address)?.text;
    if (target === undefined) return false;
    // The proxy's name answered as keyway's own connection to it does (the system resolver); a
    // name that does not resolve now reaches no proxy, and the name itself was compared above.
    const own = isIP(this.#host) !== 0 ? [this.#host] : await this.#lookup(this.#host).catch(() => []);
    const ownCanonical = own.map((a) => canonicalAddress(a)?.text).filter((a) => a !== undefined);
    if (ownCanonical.includes(target)) return true;
    return ownCanonical.some((a) => isLocalAddress(a)) && isLocalAddress(target);
  }
}

async function lookupAll(host: string): Promise<string[]> {
  return (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
}

/** The 403 for a destination that is the egress proxy: it names the destination, never the proxy's URL. */
export function egressProxyRefused(authority: string): ProxyError {
  return new ProxyError('host_not_allowed', `${authority} is the egress proxy's own address (egress.proxy): keyway does not open its own proxy to agents`, {
    hint: 'agents reach other hosts through keyway, which goes through the egress proxy for them',
  });
}
