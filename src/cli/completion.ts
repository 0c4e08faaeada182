// Shell completion scripts, generated from the command registry (index.ts COMMANDS) and each
// command's usage text, so that a command, subcommand or flag added there completes without anyone
// editing a script. Subcommands are the lowercase words after `keyway NAME` at the start of a usage
// line (ID, PROVIDER and other placeholders are upper case); flags are the --long-options of the
// usage synopsis (the lines before the first blank one) and of an option list below it.

/** What completion knows about one command. */
export interface CompletionCommand {
  name: string;
  summary: string;
  subcommands: string[];
  flags: string[];
}

/** Flags every command takes (args.ts COMMON_OPTIONS). */
export const COMMON_FLAGS = ['--help', '--json', '--home', '--config'];

/** Flags whose value is a path: completed with file names. */
const PATH_FLAGS = ['--home', '--config', '--data-file'];

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** Subcommands and flags from a command's usage text. */
export function readUsage(name: string, usage: string): Pick<CompletionCommand, 'subcommands' | 'flags'> {
  const blank = usage.search(/\n\s*\n/);
  const synopsis = blank === -1 ? usage : usage.slice(0, blank);
  const subcommands = new Set<string>();
  const line = new RegExp(`^keyway ${name} ([a-z][a-z-]*)\\b`, 'gm');
  for (const match of synopsis.matchAll(line)) subcommands.add(match[1]!);
  // Alternatives written `keyway completion bash|zsh|fish` count as subcommands too.
  for (const match of synopsis.matchAll(new RegExp(`^keyway ${name} ([a-z]+(?:\\|[a-z]+)+)`, 'gm'))) {
    for (const word of match[1]!.split('|')) subcommands.add(word);
  }
  const flags = new Set<string>();
  const add = (flag: string) => {
    if (!COMMON_FLAGS.includes(flag)) flags.add(flag);
  };
  for (const match of synopsis.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)) add(match[0]);
  // An option list further down: lines that begin with the option ("  -X, --request M  the method").
  for (const match of usage.matchAll(/^\s+(?:-[A-Za-z], )?(--[a-z][a-z-]*)/gm)) add(match[1]!);
  return { subcommands: [...subcommands], flags: [...flags] };
}

export function completionScript(shell: Shell, commands: readonly CompletionCommand[]): string {
  if (shell === 'bash') return bashScript(commands);
  if (shell === 'zsh') return zshScript(commands);
  return fishScript(commands);
}

/** Words in a shell word list: the names come from keyway's own code, so only a-z, 0-9 and '-'. */
function words(list: readonly string[]): string {
  for (const word of list) if (!/^-{0,2}[a-z0-9][a-z0-9-]*$/.test(word)) throw new Error(`not a completion word: ${JSON.stringify(word)}`);
  return list.join(' ');
}

/** A single-quoted string for bash, zsh and fish alike. */
function quoted(text: string, shell: Shell): string {
  if (shell === 'fish') return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function bashScript(commands: readonly CompletionCommand[]): string {
  const cases = commands.map((c) => `    ${c.name}) subs=${quoted(words(c.subcommands), 'bash')}; flags="$flags ${words(c.flags)}" ;;`).join('\n');
  return `# keyway completion for bash. Load it with: eval "$(keyway completion bash)"
# or save it as ~/.local/share/bash-completion/completions/keyway
_keyway() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=( $(compgen -W ${quoted(words(commands.map((c) => c.name)), 'bash')} -- "$cur") )
    return
  fi
  case "$prev" in
    ${PATH_FLAGS.join('|')}) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
  esac
  local subs='' flags=${quoted(words(COMMON_FLAGS), 'bash')}
  case "\${COMP_WORDS[1]}" in
${cases}
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=( $(compgen -W "$flags" -- "$cur") )
  elif [[ $COMP_CWORD -eq 2 && -n "$subs" ]]; then
    COMPREPLY=( $(compgen -W "$subs" -- "$cur") )
  else
    COMPREPLY=( $(compgen -f -- "$cur") )
  fi
}
complete -F _keyway keyway
`;
}

function zshScript(commands: readonly CompletionCommand[]): string {
  const described = commands.map((c) => `    ${quoted(`${c.name}:${c.summary}`, 'zsh')}`).join('\n');
  const cases = commands.map((c) => `    ${c.name}) subs=(${words(c.subcommands)}); flags+=(${words(c.flags)}) ;;`).join('\n');
  return `#compdef keyway
# keyway completion for zsh. Load it with: eval "$(keyway completion zsh)" (after compinit)
# or save it as _keyway in a folder on $fpath
_keyway() {
  local -a keyway_commands subs flags
  keyway_commands=(
${described}
  )
  if (( CURRENT == 2 )); then
    _describe 'keyway command' keyway_commands
    return
  fi
  case \${words[CURRENT-1]} in
    ${PATH_FLAGS.join('|')}) _files; return ;;
  esac
  flags=(${words(COMMON_FLAGS)})
  case \${words[2]} in
${cases}
  esac
  if [[ \${words[CURRENT]} == -* ]]; then
    compadd -- $flags
  elif (( CURRENT == 3 && \${#subs} > 0 )); then
    compadd -- $subs
  else
    _files
  fi
}
if (( $+functions[compdef] )); then compdef _keyway keyway; fi
`;
}

function fishScript(commands: readonly CompletionCommand[]): string {
  const lines = [
    '# keyway completion for fish. Load it with: keyway completion fish | source',
    '# or save it as ~/.config/fish/completions/keyway.fish',
    'complete -c keyway -e',
    'complete -c keyway -f',
    ...commands.map((c) => `complete -c keyway -n __fish_use_subcommand -a ${c.name} -d ${quoted(c.summary, 'fish')}`),
    ...COMMON_FLAGS.map((f) => `complete -c keyway -l ${f.slice(2)}${PATH_FLAGS.includes(f) ? ' -r -F' : ''}`),
  ];
  for (const c of commands) {
    const when = `'__fish_seen_subcommand_from ${c.name}'`;
    if (c.subcommands.length > 0) {
      // Only as the word right after the command: `keyway grants show ID` offers no more subcommands.
      lines.push(
        `complete -c keyway -n ${quoted(`__fish_seen_subcommand_from ${c.name}; and test (count (commandline -opc)) -eq 2`, 'fish')} -a ${quoted(words(c.subcommands), 'fish')}`,
      );
    }
    for (const f of c.flags) lines.push(`complete -c keyway -n ${when} -l ${f.slice(2)}${PATH_FLAGS.includes(f) ? ' -r -F' : ''}`);
  }
  return `${lines.join('\n')}\n`;
}
