import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/index.ts';
import { describeCommands } from '../../src/cli/commands/completion.ts';
import { readUsage } from '../../src/cli/completion.ts';
import { execFile } from 'node:child_process';
import { cleanEnv, runCli } from '../helpers/keyway.ts';

// `keyway completion bash|zsh|fish` through the real CLI, each script loaded by its real shell and
// asked to complete. The scripts are generated from the command registry, so every registered
// command, subcommand and flag must come back.

const dir = mkdtempSync(join(tmpdir(), 'keyway-completion-'));
const env = cleanEnv({ HOME: dir });
const scripts: Record<string, string> = {};

/** Runs a shell with no stdin (a shell that exits at once must not meet a write to its stdin). */
function runProcess(command: string, args: string[], environment: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { env: environment, timeout: 15_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 127;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end();
  });
}

async function shellFound(shell: string): Promise<boolean> {
  return (await runProcess('sh', ['-c', `command -v ${shell}`], env)).code === 0;
}

/** Lines a shell printed, sorted, for comparing word sets. */
const sorted = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .sort();

describe('keyway completion', () => {
  const names = COMMANDS.map((c) => c.name);

  beforeAll(async () => {
    for (const shell of ['bash', 'zsh', 'fish']) {
      const r = await runCli(['completion', shell], { KEYWAY_HOME: dir, HOME: dir });
      expect(r.code, r.stderr).toBe(0);
      scripts[shell] = join(dir, `keyway.${shell}`);
      writeFileSync(scripts[shell]!, r.stdout);
    }
  });

  it('reads subcommands and flags from usage texts', () => {
    expect(readUsage('grants', 'keyway grants list [--json]\nkeyway grants add ID --type T\n   [--allow-http]\n\nSee keyway secrets set --stdin.')).toEqual({
      subcommands: ['list', 'add'],
      flags: ['--type', '--allow-http'],
    });
    expect(readUsage('completion', 'keyway completion bash|zsh|fish').subcommands).toEqual(['bash', 'zsh', 'fish']);
    expect(readUsage('fetch', 'keyway fetch [-X M] URL\n\n  -X, --request M  the method\n  --data-file F  a file').flags).toEqual(['--request', '--data-file']);
  });

  it('bash: the script parses, and completing really offers every command, subcommand and flag', async () => {
    const check = await runProcess('bash', ['-n', scripts['bash']!], env);
    expect(check.code, check.stderr).toBe(0);
    const complete = (...words: string[]) =>
      runProcess(
        'bash',
        [
          '-c',
          `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _keyway; printf '%s\\n' "\${COMPREPLY[@]}"`,
          'complete',
          scripts['bash']!,
          ...words,
        ],
        env,
      );
    const registered = await runProcess('bash', ['-c', `source "$1"; complete -p keyway`, 'x', scripts['bash']!], env);
    expect(registered.stdout.trim()).toBe('complete -F _keyway keyway');
    expect(sorted((await complete('keyway', '')).stdout)).toEqual([...names].sort());
    expect(sorted((await complete('keyway', 'au')).stdout)).toEqual(['audit']);
    for (const command of await describeCommands()) {
      if (command.subcommands.length > 0)
        expect(sorted((await complete('keyway', command.name, '')).stdout), command.name).toEqual([...command.subcommands].sort());
      const flags = sorted((await complete('keyway', command.name, '--')).stdout);
      for (const flag of ['--help', '--json', ...command.flags]) expect(flags, command.name).toContain(flag);
    }
    expect(sorted((await complete('keyway', 'fetch', '--da')).stdout)).toEqual(['--data', '--data-file']);
  });

  it('zsh: the script parses, registers _keyway, and its function offers the commands, subcommands and flags', async () => {
    if (!(await shellFound('zsh'))) {
      // No zsh on this machine: still hold the script to naming every command.
      for (const name of names) expect(await fileText('zsh')).toContain(`'${name}:`);
      return;
    }
    const check = await runProcess('zsh', ['-n', scripts['zsh']!], env);
    expect(check.code, check.stderr).toBe(0);
    const registered = await runProcess(
      'zsh',
      ['-f', '-c', `autoload -Uz compinit; compinit -u -D; eval "$(cat "$1")"; print -r -- \${_comps[keyway]}`, 'x', scripts['zsh']!],
      env,
    );
    expect(registered.stdout.trim(), registered.stderr).toBe('_keyway');
    // The completion builtins only work inside a completion widget: stand-ins print what they are given.
    const stubs = `compadd() { while [[ $1 != -- ]]; do shift; done; shift; print -l -- "$@"; }; _describe() { print -l -- \${(P)2%%:*}; }; _files() { print -- '<files>'; }`;
    const complete = (current: number, ...words: string[]) =>
      runProcess('zsh', ['-f', '-c', `${stubs}; source "$1"; shift; words=("$@"); CURRENT=${current}; _keyway`, 'x', scripts['zsh']!, ...words], env);
    expect(sorted((await complete(2, 'keyway', '')).stdout)).toEqual([...names].sort());
    const agents = (await describeCommands()).find((c) => c.name === 'agents')!;
    expect(agents.subcommands).toEqual(expect.arrayContaining(['add', 'lease', 'list', 'revoke-lease', 'rm']));
    expect(sorted((await complete(3, 'keyway', 'agents', '')).stdout)).toEqual([...agents.subcommands].sort());
    expect(sorted((await complete(3, 'keyway', 'fetch', '--')).stdout)).toEqual(
      expect.arrayContaining(['--data', '--data-file', '--grant', '--header', '--request', '--json']),
    );
    expect((await complete(4, 'keyway', 'fetch', '--data-file', '')).stdout.trim()).toBe('<files>');
  });

  it('fish: the script parses, and fish itself completes commands, subcommands and flags', async () => {
    if (!(await shellFound('fish'))) {
      for (const name of names) expect(await fileText('fish')).toContain(`-a ${name} `);
      return;
    }
    const check = await runProcess('fish', ['--no-execute', scripts['fish']!], env);
    expect(check.code, check.stderr).toBe(0);
    const complete = async (line: string) => {
      const r = await runProcess('fish', ['--no-config', '-c', `source $argv[1]; complete -C $argv[2]`, scripts['fish']!, line], env);
      expect(r.code, r.stderr).toBe(0);
      return sorted(r.stdout).map((l) => l.split('\t')[0]!);
    };
    expect(await complete('keyway ')).toEqual(expect.arrayContaining(names));
    for (const command of await describeCommands()) {
      if (command.subcommands.length > 0) expect(await complete(`keyway ${command.name} `), command.name).toEqual([...command.subcommands].sort());
    }
    expect(await complete('keyway audit ')).toEqual(['query', 'tail', 'verify']);
    expect(await complete('keyway agents add bot --')).toEqual(expect.arrayContaining(['--grants', '--lease-ttl', '--json', '--home']));
  });
});

async function fileText(shell: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  return readFile(scripts[shell]!, 'utf8');
}
