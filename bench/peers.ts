// The proxies measured beside keyway in the same run, as routes: squid (ssl-bump, the yardstick of
// issue 12) and the bare forwarder (the floor of keyway's stack). Each runs as a child process with
// its own CA, trusted by its route's client explicitly; each adds the same credential keyway does.
import { type Route, proxyRoute } from './clients.ts';
import { type FloorChild, startFloorChild } from './floor-child.ts';
import type { MemoryReading } from './proc.ts';
import { type SquidChild, squidAvailable, squidBinary, squidMissing, startSquidChild } from './squid-child.ts';

export interface PeerOptions {
  squid: boolean;
  floor: boolean;
  /** Every host name the scenarios use (all map to 127.0.0.1). */
  hosts: readonly string[];
  /** The granted domain, as a suffix: '.bench.test'. */
  domainSuffix: string;
  secret: string;
  upstreamCaPath: string;
  upstreamCa: string;
  /** Default: squidBinary() (/usr/sbin/squid, or KEYWAY_BENCH_SQUID). */
  squidBinary?: string | undefined;
  /** --profile: open the bare forwarder's inspector. */
  inspect?: boolean | undefined;
  log(line: string): void;
}

export interface Peers {
  squid?: SquidChild | undefined;
  floor?: FloorChild | undefined;
  routes: Route[];
  /** RSS of each peer that ran (squid: with its helpers). */
  memory(): { squid?: MemoryReading | undefined; floor?: MemoryReading | undefined };
  stop(): Promise<void>;
  /** SIGKILL every peer process at once, for a run that must end now. */
  killNow(): void;
}

export async function startPeers(o: PeerOptions): Promise<Peers> {
  const peers: Peers = {
    routes: [],
    memory: () => ({ squid: peers.squid?.memory(), floor: peers.floor?.memory() }),
    stop: async () => {
      await Promise.all([peers.squid?.stop(), peers.floor?.stop()].map((p) => p?.catch(() => undefined)));
    },
    killNow: () => {
      peers.squid?.killNow();
      try {
        if (peers.floor) process.kill(peers.floor.pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    },
  };
  try {
    const binary = o.squidBinary ?? squidBinary();
    if (o.squid && !squidAvailable(binary)) o.log(squidMissing(binary));
    else if (o.squid) {
      const squid = await startSquidChild({ hosts: o.hosts, injectDomains: [o.domainSuffix], secret: o.secret, upstreamCaPath: o.upstreamCaPath, binary });
      peers.squid = squid;
      peers.routes.push(proxyRoute('squid', squid.url, squid.caPem, o.upstreamCa, squid.cpuMs));
      o.log(`squid ${squid.version} (ssl-bump, request_header_add) pid ${squid.pid} on ${squid.url}`);
    }
    if (o.floor) {
      const floor = await startFloorChild({ hosts: o.hosts, secret: o.secret, upstreamCaPath: o.upstreamCaPath, inspect: o.inspect });
      peers.floor = floor;
      peers.routes.push(proxyRoute('floor', floor.url, floor.caPem, o.upstreamCa, floor.cpuMs));
      o.log(`bare forwarder (the floor) pid ${floor.pid} on ${floor.url}`);
    }
    return peers;
  } catch (err) {
    await peers.stop();
    throw err;
  }
}
