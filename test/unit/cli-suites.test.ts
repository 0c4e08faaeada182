import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLI_SUITES } from '../../scripts/cli-suites.mjs';

// `npm run test:cli-bin` reruns the CLI suites against the single executable by KEYWAY_CLI_BIN,
// which only the helpers read (runCli, startChildProxy, cliCommand). A suite or helper that starts
// keyway as `[process.execPath, CLI]` itself would still run src/ there, and pass without testing
// the executable at all: none may.
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OWN_SPAWN = [
  /process\.execPath,\s*\[\s*(CLI|SRC_CLI)\b/,
  /\[\s*process\.execPath,\s*(CLI|SRC_CLI)\b/,
  /\$\{process\.execPath\}["']?\s+["']?\$\{(CLI|SRC_CLI)\}/,
];

describe('the CLI suites run against the single executable', () => {
  it('are files that exist, each named once', () => {
    expect(CLI_SUITES.length).toBeGreaterThan(5);
    expect(new Set(CLI_SUITES).size).toBe(CLI_SUITES.length);
    for (const file of CLI_SUITES) expect(existsSync(join(ROOT, file)), file).toBe(true);
  });

  it('start keyway through the helpers only, as do the helpers themselves', () => {
    const helpers = readdirSync(join(ROOT, 'test', 'helpers'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => `test/helpers/${f}`);
    // run-killed.ts gives Node an --import of its own (a kill at a chosen point): only src/ can take one.
    const checked = [...CLI_SUITES, ...helpers.filter((f) => f !== 'test/helpers/run-killed.ts')];
    const offenders = checked.filter((file) => OWN_SPAWN.some((own) => own.test(readFileSync(join(ROOT, file), 'utf8'))));
    expect(offenders).toEqual([]);
  });

  it('the check sees the forms it looks for', () => {
    for (const line of [
      'spawn(process.execPath, [CLI, "start"])',
      'runProcess(\n  process.execPath,\n  [SRC_CLI, ...args],',
      "[process.execPath, CLI, 'run'].map((w) => w)",
      `eval "$("\${process.execPath}" "\${CLI}" env)"`,
    ]) {
      expect(
        OWN_SPAWN.some((own) => own.test(line)),
        line,
      ).toBe(true);
    }
    expect(OWN_SPAWN.some((own) => own.test('runProcess(...cliCommand(["init"]), env)'))).toBe(false);
  });

  it('run in CI after npm test', () => {
    const commands = readFileSync(join(ROOT, '.ci', 'run'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
    expect(commands.indexOf('npm run test:cli-bin')).toBeGreaterThan(commands.indexOf('npm test'));
    expect(commands.indexOf('npm run release')).toBeGreaterThan(-1);
    expect(commands.indexOf('npm run release')).toBeLessThan(commands.indexOf('npm run test:cli-bin'));
  });
});
