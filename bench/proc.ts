// What a peer process costs, read from /proc (Linux): CPU time (utime + stime) and resident memory,
// of one process or of a process and all its live descendants (squid and its helpers).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface MemoryReading {
  rssMiB: number;
  /** Peak RSS so far (VmHWM); for a tree, the sum of each process's peak. */
  peakMiB: number;
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface StatFields {
  ppid: number;
  /** utime + stime, and cutime + cstime (children already reaped), in clock ticks. */
  own: number;
  reaped: number;
}

/** /proc/PID/stat; the command name (field 2) may hold spaces, so fields are counted after its ')'. */
function readStat(pid: number): StatFields | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
  const field = (n: number) => Number(rest[n - 3]);
  return { ppid: field(4), own: field(14) + field(15), reaped: field(16) + field(17) };
}

/** True for a process that has exited and waits for its parent to collect it. */
export function isZombie(pid: number): boolean {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** The pid and every live process below it. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0 && out.length < 10_000) {
    const pid = queue.shift() as number;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** CPU time of one process, in ms. */
export function processCpuMs(pid: number): number {
  const stat = readStat(pid);
  if (!stat) throw new Error(`no /proc/${pid}/stat`);
  return (stat.own * 1000) / clockTicks();
}

/** CPU time of a process, of its children it reaped and of its live descendants, in ms. */
export function processTreeCpuMs(root: number): number {
  let ticks = 0;
  for (const pid of processTree(root)) {
    const stat = readStat(pid);
    if (stat) ticks += stat.own + (pid === root ? stat.reaped : 0);
  }
  return (ticks * 1000) / clockTicks();
}

export function readMemory(pid: number): MemoryReading {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!match?.[1]) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(match[1]) / 1024;
  };
  return { rssMiB: field('VmRSS'), peakMiB: field('VmHWM') };
}

/** Memory of a process and its live descendants, summed (shared pages count once per process). */
export function processTreeMemory(root: number): MemoryReading {
  let rssMiB = 0;
  let peakMiB = 0;
  for (const pid of processTree(root)) {
    try {
      const m = readMemory(pid);
      rssMiB += m.rssMiB;
      peakMiB += m.peakMiB;
    } catch {
      // Exited between the listing and the read.
    }
  }
  return { rssMiB, peakMiB };
}
