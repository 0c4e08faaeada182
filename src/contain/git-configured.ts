import { spawnSync } from 'node:child_process';
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { isWithin } from './change-judge.ts';

// What the person's git configuration, as git reads it in the working folder, names inside the
// folders a contained command may write: a hooks folder (core.hooksPath: husky's .husky/_, a
// project's .githooks), a file it includes (include.path = ../.gitconfig), a program or script it
// runs (core.fsmonitor, a filter driver, a pager, an alias). Those are code git runs, found by the
// configuration rather than by a name the judge knows: what the command writes there is kept aside.
// git itself reads the configuration (system, global, the repository's, includes), so nothing of
// its syntax is guessed here; git reads it, it runs nothing for `config --list`.

/** Paths inside `roots` that git's configuration in `workdir` names; [] where git or a repository is not there. */
export function gitConfiguredPaths(workdir: string, roots: readonly string[]): string[] {
  const git = (args: string[]) => spawnSync('git', ['-c', 'safe.directory=*', '-C', workdir, ...args], { encoding: 'utf8', timeout: 5_000 });
  const listed = git(['config', '--list', '--show-origin', '-z']);
  if (listed.status !== 0 || typeof listed.stdout !== 'string') return [];
  const top = git(['rev-parse', '--show-toplevel']);
  const base = top.status === 0 && top.stdout.trim() !== '' ? top.stdout.trim() : workdir;
  const found = new Set<string>();
  const consider = (candidate: string) => {
    if (roots.some((root) => isWithin(candidate, root))) found.add(candidate);
  };
  const fields = listed.stdout.split('\0');
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const origin = fields[i]!;
    const entry = fields[i + 1]!;
    const newline = entry.indexOf('\n');
    const key = (newline === -1 ? entry : entry.slice(0, newline)).toLowerCase();
    const value = newline === -1 ? '' : entry.slice(newline + 1);
    if (origin.startsWith('file:')) consider(resolve(workdir, origin.slice(5)));
    if (key === 'core.hookspath') consider(resolve(base, expandHome(value)));
    // Any word of a value that names a path: a script, a program, an included file.
    for (const word of value.split(/[\s"';|&()]+/)) {
      if (word.includes('/') || word.startsWith('.')) consider(isAbsolute(expandHome(word)) ? expandHome(word) : resolve(base, word));
    }
  }
  return [...found];
}

function expandHome(path: string): string {
  return path.startsWith('~/') ? `${homedir()}${path.slice(1)}` : path;
}
