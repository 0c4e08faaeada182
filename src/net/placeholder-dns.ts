import type { Socket } from 'node:net';
import dnsPacket from 'dns-packet';

// A DNS answerer that sends no question anywhere: every A question is answered with one
// placeholder address, anything else (AAAA too) with no answer, so clients use IPv4. Where it
// answers, a client's lookup carries nothing out (no tunnel through names), and the connection it
// then makes to the placeholder is redirected to keyway, which routes it by its server name or Host
// and resolves the real address itself. `keyway run --contain` answers inside the namespace
// (contain/inside.ts); a sidecar's keyway answers the pod's port 53 (proxy.transparent.dns_listen).

/** Where every name resolves: an address of the benchmarking range (RFC 2544), reached only through a redirect to keyway. */
export const PLACEHOLDER_ADDRESS = '198.18.0.1';

/** The answer to one DNS message, or undefined for one that is not a DNS question. */
export function answerDnsQuery(message: Buffer, address: string): Buffer | undefined {
  let query: dnsPacket.Packet;
  try {
    query = dnsPacket.decode(message);
  } catch {
    return undefined;
  }
  if (query.type !== 'query') return undefined;
  const answers = (query.questions ?? [])
    .filter((q) => q.type === 'A')
    .map((q) => ({ type: 'A' as const, name: q.name, ttl: 5, class: 'IN' as const, data: address }));
  return dnsPacket.encode({
    id: query.id,
    type: 'response',
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: query.questions,
    answers,
  });
}

/** DNS over TCP (a resolver's retry after a truncated answer, or one that asks over TCP first): messages framed by a two-byte length. */
export function answerDnsOverTcp(socket: Socket, address: string): void {
  let pending = Buffer.alloc(0);
  socket.on('error', () => socket.destroy());
  socket.setTimeout(10_000, () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
      const reply = answerDnsQuery(pending.subarray(2, 2 + pending.readUInt16BE(0)), address);
      pending = pending.subarray(2 + pending.readUInt16BE(0));
      if (!reply) return void socket.destroy();
      const length = Buffer.alloc(2);
      length.writeUInt16BE(reply.length);
      socket.write(Buffer.concat([length, reply]));
    }
    if (pending.length > 2 + 65_535) socket.destroy();
  });
}
