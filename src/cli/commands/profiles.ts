import { stringify } from 'yaml';
import { findProfile, listProfiles, type LoadedProfile } from '../../profiles/run/index.ts';
import { resolveHome } from '../../paths.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { unknownSubcommand } from '../did-you-mean.ts';
import { printJson, printTable, usageError } from '../io.ts';

const USAGE = `keyway profiles list [--json]
keyway profiles show NAME [--json]

A profile says what a coding agent needs to run behind keyway: the hosts it calls and why, its own
state (made where missing, writable under --contain), the variables it reads its keys from (given
placeholders), the CA variables it honours, the variables, ports and sockets it needs contained.
\`keyway run [--contain] --profile NAME [-- CMD…]\` uses one; \`keyway doctor --profile NAME\` checks one.
Built in: claude-code, codex, gemini-cli. Your own: profiles/NAME.yaml in keyway's home, the same
shape (a file named as a built-in takes its place, and list, show and run say so).
\`list\` names them all (a file that does not parse is named on stderr, and list exits 1); \`show\`
prints one as YAML, the shape a file of your own takes. docs/agents/README.md describes each key.`;

const WORDS = { list: 0, show: 1 } as const;

function sourceText(loaded: LoadedProfile): string {
  if (loaded.source.kind === 'builtin') return 'built in';
  return loaded.source.overrides ? `${loaded.source.path} (in place of the built-in)` : loaded.source.path;
}

function sourceJson(loaded: LoadedProfile): { source: string; overrides_builtin: boolean } {
  return loaded.source.kind === 'builtin'
    ? { source: 'builtin', overrides_builtin: false }
    : { source: loaded.source.path, overrides_builtin: loaded.source.overrides };
}

export const profiles: Command = {
  name: 'profiles',
  usage: USAGE,
  async run(argv, io) {
    const args = parse(argv, {}, WORDS);
    const home = resolveHome(args.string('home'), io.env);
    const sub = args.positionals[0];
    if (sub === 'list') {
      const { profiles: found, problems } = listProfiles(home);
      if (args.json)
        printJson(
          io,
          found.map((p) => ({ name: p.name, ...sourceJson(p), command: p.profile.command, description: p.profile.description })),
        );
      else
        printTable(
          io,
          found.map((p) => ({ name: p.name, command: p.profile.command, source: sourceText(p), description: p.profile.description })),
          ['name', 'command', 'source', 'description'],
        );
      for (const problem of problems) io.err(`keyway profiles: ${problem}`);
      return problems.length === 0 ? 0 : 1;
    }
    if (sub === 'show') {
      const name = args.positionals[1];
      if (name === undefined) throw usageError('usage: keyway profiles show NAME (keyway profiles list names them)');
      const loaded = findProfile(home, name);
      if (args.json) printJson(io, { name: loaded.name, ...sourceJson(loaded), profile: loaded.profile });
      else io.out(`# profile ${loaded.name}: ${sourceText(loaded)}\n${stringify(loaded.profile, { lineWidth: 0 }).trimEnd()}`);
      return 0;
    }
    throw usageError(unknownSubcommand(sub, Object.keys(WORDS)));
  },
};
