// What the soak reads about the keyway process, from /proc: resident memory and open descriptors.
import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { readMemory } from '../keyway-child.ts';

export interface ProcessProbe {
  rssMiB(): number;
  /**
   * Resident size of glibc's main-arena heap (the `[heap]` mapping): where native allocations
   * (OpenSSL, buffers' backing stores, libuv) live. Growth here and not in the rest of RSS points
   * at the allocator or native code, not at V8's heap.
   */
  heapMiB(): number;
  fds(): number;
  /** CPU time (user + system) the process has used so far, in seconds. */
  cpuS(): number;
}

const TICKS_PER_S = 100; // USER_HZ on Linux

export function procProbe(pid: number): ProcessProbe {
  return {
    rssMiB: () => readMemory(pid).rssMiB,
    heapMiB: () => {
      const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
      const at = smaps.indexOf('[heap]');
      const rss = at < 0 ? null : /\nRss:\s+(\d+) kB/.exec(smaps.slice(at));
      return rss?.[1] ? Number(rss[1]) / 1024 : 0;
    },
    fds: () => readdirSync(`/proc/${pid}/fd`).length,
    cpuS: () => {
      // Fields after the command name, which sits in parentheses and may hold spaces.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
    },
  };
}

export interface FdSettle {
  fds: number;
  ms: number;
  /** False when the bound ran out first. */
  reached: boolean;
}

/**
 * Polls the descriptor count until it is at or under `target`, or until `maxMs`. Sockets the other
 * side closed are released by keyway when it sees the FIN, which may take a turn of its event loop.
 */
export async function waitForFds(probe: ProcessProbe, target: number, maxMs: number): Promise<FdSettle> {
  const start = performance.now();
  for (let polls = 0; polls < 10_000; polls++) {
    const fds = probe.fds();
    const ms = performance.now() - start;
    if (fds <= target) return { fds, ms, reached: true };
    if (ms >= maxMs) return { fds, ms, reached: false };
    await sleep(100);
  }
  return { fds: probe.fds(), ms: performance.now() - start, reached: false };
}
