import { lstatSync, mkdtempSync, readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { isWithin } from './change-judge.ts';
import type { SandboxPlan } from './sandbox.ts';

// The command's HOME inside `keyway run --contain`: an empty folder of its own, where a tool may
// write its caches and dotfiles for the run, and which is dropped when the command exits: nothing
// written there reaches the person's home. It is a tmpfs mounted by inside.ts in the containment's
// own mount namespace (not by bwrap), so that inside.ts can say, when the command exits, what was
// written there and dropped. The folders the run names inside the home (the working folder, the
// profile's state, --allow-read and --allow-write paths) are bound over it; the empty folders and
// files bwrap makes to mount them on are not writes of the command's.

export interface ThrowawayHome {
  /** Where the tmpfs is mounted, outside the command's view (it sees it at `home`). */
  folder: string;
  /** The command's HOME. */
  home: string;
}

export interface DroppedWrites {
  /** The command's HOME. */
  home: string;
  /** What it wrote at the top of it, relative ('.bashrc', '.npm'), at most LISTED of them. */
  names: string[];
  /** How many there were in all. */
  count: number;
}

const LISTED = 20;

/** Mounts an empty tmpfs for the plan's HOME with `mount`, or undefined when HOME is not made throwaway. */
export function throwawayHome(plan: SandboxPlan, mount: (args: string[]) => void): ThrowawayHome | undefined {
  if (plan.throwawayHome === undefined) return undefined;
  const folder = mkdtempSync(join('/tmp', 'keyway-contain-home-'));
  mount(['-t', 'tmpfs', '-o', 'mode=0700,nosuid,nodev', 'tmpfs', folder]);
  return { folder, home: plan.throwawayHome };
}

/** What the command left in its HOME, once it exited: each name at the top, less the mount points of what the run bound there. */
export function droppedWrites(home: ThrowawayHome, plan: SandboxPlan): DroppedWrites {
  const bound = [plan.workdir, ...plan.writable, ...plan.readable, ...plan.programs, ...plan.state.map((s) => s.target), ...plan.sockets]
    .filter((path) => isWithin(path, home.home) && path !== home.home)
    .map((path) => relative(home.home, path).split(sep));
  const names: string[] = [];
  let count = 0;
  const walk = (rel: string[]) => {
    for (const name of namesIn(join(home.folder, ...rel))) {
      const here = [...rel, name];
      const onTheWay = bound.some((parts) => here.every((part, i) => parts[i] === part));
      if (!onTheWay) {
        count++;
        if (names.length < LISTED) names.push(here.join('/'));
        continue;
      }
      // A folder bwrap made on the way to a mount point: what else the command put beside it counts.
      if (lstatSync(join(home.folder, ...here)).isDirectory() && !bound.some((parts) => parts.length === here.length)) walk(here);
    }
  };
  walk([]);
  return { home: home.home, names, count };
}

function namesIn(folder: string): string[] {
  try {
    return readdirSync(folder);
  } catch {
    return [];
  }
}
