import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, isIPv6 } from 'node:net';
import type { ListenAddress } from '../../config/index.ts';
import { answerDnsOverTcp, answerDnsQuery, PLACEHOLDER_ADDRESS } from '../../net/placeholder-dns.ts';

// proxy.transparent.dns_listen: the sidecar's answer to the agent's port 53. The pod's rules
// (deploy/transparent/redirect.nft) send every DNS question of the agent's here, UDP and TCP,
// whatever resolver it asked, so no name it asks ever leaves the pod (a name is a channel: a
// resolver outside relays whatever it is sent, and a server of the agent's own on port 53 reads
// raw bytes). Every A question gets one placeholder address; the agent's connection to it, on 443
// or 80, is redirected to keyway's transparent listeners, which route by server name or Host and
// resolve the real host themselves, as every upstream is resolved (keyway's own uid is never
// redirected).

export interface DnsAnswerer {
  port: number;
  close(): Promise<void>;
}

/** Answers DNS over UDP and TCP on one address and port. */
export async function startDnsAnswerer(at: ListenAddress): Promise<DnsAnswerer> {
  const tcp = createServer((socket) => answerDnsOverTcp(socket, PLACEHOLDER_ADDRESS));
  tcp.listen(at.port, at.host);
  await once(tcp, 'listening');
  const port = (tcp.address() as { port: number }).port;
  const udp: UdpSocket = createSocket(isIPv6(at.host) ? 'udp6' : 'udp4');
  try {
    udp.bind(port, at.host);
    await once(udp, 'listening');
  } catch (err) {
    tcp.close();
    throw err;
  }
  udp.on('message', (message, from) => {
    const reply = answerDnsQuery(message, PLACEHOLDER_ADDRESS);
    if (reply) udp.send(reply, from.port, from.address);
  });
  // A datagram to an unreachable sender, or one too large: nothing to do but go on answering.
  udp.on('error', () => undefined);
  return {
    port,
    close: async () => {
      udp.close();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    },
  };
}
