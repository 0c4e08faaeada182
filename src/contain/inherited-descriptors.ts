import { closeSync, readdirSync, readFileSync } from 'node:fs';

// Descriptors a launcher leaves open (a harness's socket, a pipe to a parent) pass through every
// exec unless closed: through keyway, unshare and bwrap into a contained command, where a socket of
// the host's network namespace would dial out past every redirect. Node opens all of its own with
// O_CLOEXEC, so each descriptor above 2 without that flag was inherited, not Node's, and nothing of
// keyway's uses it: `keyway run --contain` closes them all before it starts the chain. Node has no
// fcntl; /proc/self/fdinfo says each descriptor's flags.

const O_CLOEXEC = 0o2000000;

/** Closes every descriptor above 2 that is not close-on-exec (besides `keep`); returns the numbers closed. */
export function closeInheritedDescriptors(keep: readonly number[] = []): number[] {
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return [];
  }
  const closed: number[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd <= 2 || keep.includes(fd)) continue;
    const flags = flagsOf(fd);
    if (flags === undefined || (flags & O_CLOEXEC) !== 0) continue;
    try {
      closeSync(fd);
      closed.push(fd);
    } catch {
      // Gone already (the directory listing's own descriptor, closed as it was read).
    }
  }
  return closed;
}

function flagsOf(fd: number): number | undefined {
  try {
    const line = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags:'));
    return line === undefined ? undefined : Number.parseInt(line.slice(6).trim(), 8);
  } catch {
    return undefined;
  }
}
