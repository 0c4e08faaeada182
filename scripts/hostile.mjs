// npm run hostile [-- --long] [suite names…]: the adversarial suites in test/hostile.
// Short form is what `npm test` runs too; --long runs the counts the figures come from
// (millions of fuzz cases, thousands of crashes) with no per-test time limit.
import { spawnSync } from 'node:child_process';

const argv = process.argv.slice(2);
const long = argv.includes('--long');
const suites = argv.filter((a) => a !== '--long').map((name) => `test/hostile/${name}`);
const env = { ...process.env, KEYWAY_HOSTILE: long ? 'long' : 'short' };
const args = [
  'vitest',
  'run',
  '--reporter=verbose',
  ...(long ? ['--testTimeout=0', '--hookTimeout=120000', '--maxWorkers=1'] : []),
  ...(suites.length ? suites : ['test/hostile']),
];
const run = spawnSync('npx', args, { stdio: 'inherit', env });
process.exit(run.status ?? 1);
