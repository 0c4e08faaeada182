import { COMMANDS } from '../index.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { completionScript, readUsage, SHELLS, type CompletionCommand, type Shell } from '../completion.ts';
import { usageError } from '../io.ts';

export const completion: Command = {
  name: 'completion',
  usage: `keyway completion bash|zsh|fish

Prints a completion script for the shell: commands (with their summaries where the shell shows
them), subcommands and flags, taken from keyway's own command list and usage texts.
  bash:  eval "$(keyway completion bash)"      (in ~/.bashrc)
  zsh:   eval "$(keyway completion zsh)"       (in ~/.zshrc, after compinit)
  fish:  keyway completion fish | source       (or save as ~/.config/fish/completions/keyway.fish)`,
  async run(argv, io) {
    const args = parse(argv, {}, 1);
    const [shell, extra] = args.positionals;
    if (shell === undefined || extra !== undefined || !SHELLS.includes(shell as Shell)) {
      throw usageError(`usage: keyway completion ${SHELLS.join('|')}`);
    }
    io.out(completionScript(shell as Shell, await describeCommands()).trimEnd());
    return 0;
  },
};

/** Every registered command, with the subcommands and flags its usage names. */
export async function describeCommands(): Promise<CompletionCommand[]> {
  return Promise.all(
    COMMANDS.map(async (entry) => {
      const command = await entry.load();
      return { name: entry.name, summary: entry.summary, ...readUsage(entry.name, command.usage) };
    }),
  );
}
