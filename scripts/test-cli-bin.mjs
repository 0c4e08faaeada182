// `npm run test:cli-bin`: the CLI suites once more, against the single executable (issue 91, item 2):
// KEYWAY_CLI_BIN=release/keyway-linux-x64 makes runCli, startChildProxy and cliCommand (test/helpers)
// run that file instead of `node src/cli/main.ts`, so each `keyway …` these suites start is the
// executable, its children and workers included. .ci/run runs it after npm test, on the executable
// `npm run release` built; the rest of the suite is not run twice (the time it adds: .ci/run, docs/install.md).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { CLI_SUITES } from './cli-suites.mjs';

const bin = process.env['KEYWAY_CLI_BIN'] || 'release/keyway-linux-x64';
if (!existsSync(bin)) {
  process.stderr.write(`test:cli-bin: ${bin} is not built: npm run release (or -- --only=linux-x64) first\n`);
  process.exit(1);
}
const run = spawnSync('npx', ['vitest', 'run', ...CLI_SUITES, ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, KEYWAY_CLI_BIN: bin } });
process.exit(run.status ?? 1);
