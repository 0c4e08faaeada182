import { readFileSync } from 'node:fs';

// The port a contained command dialled, for a connection that reached keyway through the
// catch-all listener (every port without a listener of its own shares it, so the listener says
// nothing of the port). Node cannot ask the socket (SO_ORIGINAL_DST), but the namespace's
// connection tracking table can: its entry for the connection holds the original destination and
// the translated one. keyway reads it through /proc of the namespace's first process (inside.ts),
// matching the translated tuple (to the catch-all's port, from the client's port as keyway sees it).
// Only to say the port in a refusal: nothing is routed by it.

/** A reader of the original port of a connection accepted from the namespace of process `pid`. */
export function originalPortReader(pid: number): (socket: { localPort?: number; remotePort?: number }) => number | undefined {
  return (socket) => {
    if (socket.localPort === undefined || socket.remotePort === undefined) return undefined;
    let table: string;
    try {
      table = readFileSync(`/proc/${pid}/net/nf_conntrack`, 'utf8');
    } catch {
      return undefined;
    }
    return originalPort(table, socket.localPort, socket.remotePort);
  };
}

/**
 * In a conntrack table (one entry a line: `ipv4 2 tcp 6 … src= dst= sport= dport= src= dst= sport=
 * dport= …`, the original tuple then the reply's), the original destination port of the TCP
 * connection whose reply comes from `listenerPort` to `clientPort`.
 */
export function originalPort(table: string, listenerPort: number, clientPort: number): number | undefined {
  for (const line of table.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words[2] !== 'tcp') continue;
    const sports = words.filter((w) => w.startsWith('sport=')).map((w) => Number(w.slice(6)));
    const dports = words.filter((w) => w.startsWith('dport=')).map((w) => Number(w.slice(6)));
    if (sports.length < 2 || dports.length < 2) continue;
    if (sports[1] === listenerPort && dports[1] === clientPort) return dports[0];
  }
  return undefined;
}
