import { describe, expect, it } from 'vitest';
import { splitCommandLine } from '../../src/cli/global-options.ts';

// Global options before the command are moved after its name, where its parser reads them (issue 60).

describe('splitCommandLine', () => {
  it('moves --home, --config and --json given before the command after its name, in their order', () => {
    expect(splitCommandLine(['--home', '/h', '--json', 'status'])).toEqual({ name: 'status', rest: ['--home', '/h', '--json'], topLevel: undefined });
    expect(splitCommandLine(['--home=/h', '--config', 'c.yaml', 'grants', 'list', '--json'])).toEqual({
      name: 'grants',
      rest: ['--home=/h', '--config', 'c.yaml', 'list', '--json'],
      topLevel: undefined,
    });
    // After the command, nothing moves: `keyway run` keeps CMD's own options as given.
    expect(splitCommandLine(['run', '--home', '/h', '--', 'curl', '--json'])).toEqual({
      name: 'run',
      rest: ['--home', '/h', '--', 'curl', '--json'],
      topLevel: undefined,
    });
  });

  it('answers --help and --version at the top level, before or after global options', () => {
    expect(splitCommandLine(['--home', '/h', '--version']).topLevel).toBe('--version');
    expect(splitCommandLine(['--json', '-h']).topLevel).toBe('--help');
    expect(splitCommandLine(['help']).topLevel).toBe('--help');
  });

  it('takes the first other word as the command, an unknown option included (refused by name there)', () => {
    expect(splitCommandLine(['--hmoe', '/h', 'status'])).toEqual({ name: '--hmoe', rest: ['/h', 'status'], topLevel: undefined });
    expect(splitCommandLine(['--home', '/h'])).toEqual({ name: undefined, rest: ['--home', '/h'], topLevel: undefined });
    // --home with nothing after it: no command; --help then shows what to give.
    expect(splitCommandLine(['--home']).name).toBeUndefined();
  });
});
