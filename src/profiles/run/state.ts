import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, sep } from 'node:path';
import type { Config } from '../../config/index.ts';
import { configuredHidden, keywayFiles } from '../../contain/keyway-files.ts';
import { makeMissing, type MissingWritable, WritableRefused, writableTarget } from '../../contain/missing-writable.ts';
import { defaultHidden, isWithin } from '../../contain/sandbox.ts';
import { KeywayError } from '../../errors/index.ts';
import type { LoadedProfile } from './load.ts';

// A profile's state on this machine: each `~/…` path in the home of the user the agent runs as,
// checked where the schema cannot (state-path.ts checks the words): through every link, it is not
// the home itself, not inside or holding keyway's own files, a hidden credential path (the defaults
// and contain.hide) or a folder on PATH, and not in a `.git`. What is missing is made by the rules
// of --allow-write (contain/missing-writable.ts: one level, inside the home, private to its owner,
// never over something made meanwhile), in the kind the profile says.

export interface StatePath {
  /** As the profile writes it (`~/.claude`). */
  given: string;
  /** Where it is, links resolved (or where it will be made). */
  path: string;
  kind: 'folder' | 'file';
  /** Set when it is not there yet. */
  missing?: MissingWritable;
}

export interface StateContext {
  config: Config;
  /** --config, when given: one of keyway's files too. */
  configFile: string | undefined;
  /** The home folder `~` means: the agent's user's. */
  home: string;
  /** The agent's PATH (its folders may never hold state). */
  pathVariable: string | undefined;
}

/** Each state path of the profile, checked here; a usage error naming the path and why when one cannot be used. */
export function resolveState(loaded: LoadedProfile, ctx: StateContext): StatePath[] {
  const refuse = (given: string, why: string) => new KeywayError('usage', `profile ${loaded.name}: state ${given}: ${why}`);
  if (!isAbsolute(ctx.home) || ctx.home === '/')
    throw refuse(loaded.profile.state[0]?.path ?? '~', `the home folder is ${JSON.stringify(ctx.home)}: a profile's state needs a home of its own`);
  const realHome = real(ctx.home);
  const guarded = guardedPaths(ctx);
  return loaded.profile.state.map(({ path: given, kind }) => {
    const named = join(ctx.home, given.slice(2));
    let target: ReturnType<typeof writableTarget>;
    try {
      target = writableTarget(named, [ctx.home]);
    } catch (err) {
      if (err instanceof WritableRefused) throw refuse(given, err.message);
      throw err;
    }
    if (target.missing === undefined) {
      const isFolder = statSync(target.path).isDirectory();
      if (isFolder !== (kind === 'folder')) throw refuse(given, `is a ${isFolder ? 'folder' : 'file'}; the profile says ${kind}`);
    }
    for (const path of new Set([named, target.path])) {
      if (path === realHome || path === ctx.home) throw refuse(given, `leads to the home folder itself`);
      if (path.split(sep).some((part) => part.toLowerCase() === '.git')) throw refuse(given, `leads into a .git folder, whose configuration git runs`);
      for (const { path: other, what, holdable } of guarded) {
        if (isWithin(path, other)) throw refuse(given, `${path === named ? 'is' : `leads to ${path}, which is`} inside ${other}, ${what}`);
        if (!holdable && isWithin(other, path)) throw refuse(given, `${path === named ? 'holds' : `leads to ${path}, which holds`} ${other}, ${what}`);
      }
    }
    const missing = target.missing === undefined ? undefined : { ...target.missing, kind };
    return { given, path: target.path, kind, ...(missing === undefined ? {} : { missing }) };
  });
}

/** Makes what is missing; returns the lines that say so (for stderr). */
export function makeState(state: readonly StatePath[]): string[] {
  const missing = state.flatMap((s) => (s.missing === undefined ? [] : [s.missing]));
  try {
    return makeMissing(missing).map((line) => line.replace(/ for --allow-write:/, ' for the profile:'));
  } catch (err) {
    if (err instanceof WritableRefused) throw new KeywayError('usage', `profile state: ${err.message}`);
    throw err;
  }
}

/**
 * Paths no state may be inside, each as named and as it resolves, with why. `holdable`: a state
 * folder may hold it, because a contained command still cannot use it there: a hidden path stays
 * hidden inside a writable folder, and what it writes in a folder on PATH is kept aside
 * (contain/change-judge.ts). keyway's own files are never inside one.
 */
function guardedPaths(ctx: StateContext): Array<{ path: string; what: string; holdable: boolean }> {
  const out: Array<{ path: string; what: string; holdable: boolean }> = [];
  const add = (paths: readonly string[], what: string, holdable: boolean) => {
    for (const path of paths) for (const p of new Set([path, real(path)])) out.push({ path: p, what, holdable });
  };
  add(keywayFiles(ctx.config, ctx.configFile), "one of keyway's own files", false);
  add([...defaultHidden([ctx.home]), ...configuredHidden(ctx.config, [ctx.home])], 'hidden from contained commands', true);
  const pathFolders = (ctx.pathVariable ?? '').split(':').filter((dir) => isAbsolute(dir) && dir !== '/');
  add([...pathFolders, join(ctx.home, 'bin')], 'a folder on PATH (a program there runs by its name)', true);
  return out;
}

function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
