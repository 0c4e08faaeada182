// RSS of keyway and of each peer at named moments of the run (after start, s2, s5, s6, s8, s9): printed on
// one line each, and kept for the JSON report.
import type { KeywayChild, MemoryReading } from './keyway-child.ts';
import type { Peers } from './peers.ts';
import type { RssReadings } from './report-targets.ts';
import { fixed } from './stats.ts';

export class MemoryLog {
  readonly keyway: Record<string, MemoryReading> = {};
  readonly peers: Record<string, ReturnType<Peers['memory']>> = {};
  private readonly child: KeywayChild;
  private readonly peerSet: Peers;
  private readonly log: (line: string) => void;

  constructor(child: KeywayChild, peers: Peers, log: (line: string) => void) {
    this.child = child;
    this.peerSet = peers;
    this.log = log;
  }

  /** Reads every proxy's RSS now, records it under `when` ('afterS2') and prints it. */
  read(when: string): RssReadings {
    const k = this.child.memory();
    const m = this.peerSet.memory();
    this.keyway[when] = k;
    this.peers[when] = m;
    const peak = (x: MemoryReading | undefined) => (x ? ` (peak ${fixed(x.peakMiB, 1)})` : '');
    const label = when.replace(/^after(.)/, (_, c: string) => `after ${c.toLowerCase()}`);
    this.log(
      `RSS ${label}: keyway ${fixed(k.rssMiB, 1)} MiB${peak(k)}` +
        (m.squid ? `, squid with its helpers ${fixed(m.squid.rssMiB, 1)} MiB${peak(m.squid)}` : '') +
        (m.floor ? `, bare forwarder ${fixed(m.floor.rssMiB, 1)} MiB${peak(m.floor)}` : ''),
    );
    return { keyway: k.rssMiB, squid: m.squid?.rssMiB, floor: m.floor?.rssMiB };
  }
}
