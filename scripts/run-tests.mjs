// Runs vitest, then prints a plain "N passed, N failed" closing line that CI logs can read.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, existsSync } from 'node:fs';

mkdirSync('.test-output', { recursive: true });
const report = '.test-output/vitest.json';
// failures-now prints each failure as it happens (a run cut short still shows why).
const args = [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=./test/setup/failures-now.ts',
  '--reporter=json',
  `--outputFile.json=${report}`,
  ...process.argv.slice(2),
];
const run = spawnSync('npx', args, { stdio: 'inherit' });

let passed = 0;
let failed = 0;
if (existsSync(report)) {
  const summary = JSON.parse(readFileSync(report, 'utf8'));
  passed = summary.numPassedTests ?? 0;
  failed = summary.numFailedTests ?? 0;
}
// A suite that fails to load has no failed tests of its own: still count it as a failure.
if (run.status !== 0 && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed`);
process.exit(run.status ?? 1);
