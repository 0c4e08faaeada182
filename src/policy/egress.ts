import { canonical, embeddedIpv4, formatIp, parseIp, type IpAddress } from './address.ts';
import { configRanges, firstMatch, type IpRange } from './ip-ranges.ts';
import { specialPurpose } from './special-ranges.ts';
import { KeywayError } from '../errors/index.ts';

// Where traffic may go at all. An agent can name any host; without this, a name that resolves to
// 127.0.0.1, 10.0.0.5 or 169.254.169.254 would let it reach services behind the proxy (SSRF).
// Pure: decides on an address already resolved, never on the host text.
//
// One address can name several: ::127.0.0.1 is both a deprecated IPv6 form and 127.0.0.1;
// 64:ff9b::a9fe:a9fe is a NAT64 address and, through the translator, 169.254.169.254. Each address
// it names must pass: be outside the special-purpose ranges (special-ranges.ts) or inside
// proxy.allow_networks. A mapped address (::ffff:a.b.c.d) is the IPv4 host itself, judged as such.
// An IPv4 address reached through a translator or tunnel (NAT64, 6to4, Teredo) is a host on the
// far side, not this network: allowing 127.0.0.0/8 does not allow 64:ff9b::7f00:1. Such an
// embedded special-purpose address passes only when allow_networks names both it and the IPv6
// address that carries it.

export type EgressVerdict = { allowed: true } | { allowed: false; reason: string };

/** One address an address names, and how. */
interface Layer {
  ip: IpAddress;
  /** How the given address leads here, for the message; undefined for the address itself. */
  via?: string;
  /** Reached through a translator or tunnel: the carrying IPv6 address must be allowed too. */
  carrier?: IpAddress;
}

/**
 * The address check. `allowNetworks` (proxy.allow_networks) lets chosen ranges through, e.g.
 * 127.0.0.0/8 for local tests or 10.1.0.0/16 for an internal API.
 */
export class EgressPolicy {
  readonly #allowed: IpRange[] = [];

  constructor(allowNetworks: readonly string[] = []) {
    for (const cidr of allowNetworks) {
      const ranges = configRanges(cidr);
      if (typeof ranges === 'string') throw new KeywayError('config_invalid', `proxy.allow_networks: "${cidr}" is not a CIDR range`);
      this.#allowed.push(...ranges);
    }
  }

  check(address: string): EgressVerdict {
    const ip = parseIp(address);
    if (!ip) return { allowed: false, reason: `"${address}" is not an IP address` };
    const allowed = (a: IpAddress) => firstMatch(this.#allowed, a) !== undefined;
    for (const layer of layersOf(ip)) {
      const why = specialPurpose(layer.ip);
      if (!why || (allowed(layer.ip) && (!layer.carrier || allowed(layer.carrier)))) continue;
      const what = `${/^(IPv|IETF|SRv6|unspecified)/.test(why) ? 'an' : 'a'} ${why}`;
      const reason = layer.via ? `${address} is ${layer.via} ${formatIp(layer.ip)}, ${what}` : `${address} is ${what}`;
      return { allowed: false, reason };
    }
    return { allowed: true };
  }
}

/** The address itself (folded), the IPv6 form it was folded from, and an embedded IPv4 address. */
export function layersOf(ip: IpAddress): Layer[] {
  const c = canonical(ip);
  const layers: Layer[] = [];
  if (c.folded && c.folded.form !== 'mapped') {
    // A deprecated form is refused as a form too: allowing 127.0.0.0/8 does not allow ::127.0.0.1.
    layers.push({ ip: c.folded.ipv6 });
  }
  layers.push(c.folded ? { ip: c.address, via: `an IPv4-${c.folded.form} form of` } : { ip: c.address });
  const embedded = embeddedIpv4(c.address);
  if (embedded) layers.push({ ip: embedded.ipv4, via: `a ${embedded.form} address for`, carrier: c.address });
  return layers;
}
