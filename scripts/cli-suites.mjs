// The suites `npm run test:cli-bin` (scripts/test-cli-bin.mjs) runs against the single executable:
// those that drive keyway's command line end to end (init, start, status and stop, the store's
// commands beside a running proxy, env and run, the audit commands, mistakes and their one-line
// errors). Each starts keyway through runCli, startChildProxy or cliCommand (test/helpers), never as
// `[process.execPath, CLI]` itself: test/unit/cli-suites.test.ts keeps it so. run --contain against
// the executable is test/integration/single-executable.test.ts's.
export const CLI_SUITES = [
  'test/integration/first-run.test.ts',
  'test/integration/home.test.ts',
  'test/integration/lifecycle.test.ts',
  'test/integration/status-stop.test.ts',
  'test/integration/admin-empty-secrets.test.ts',
  'test/integration/cli-store.test.ts',
  'test/integration/owed-change-lines.test.ts',
  'test/integration/env-run-mistakes.test.ts',
  'test/integration/profiles.test.ts',
  'test/integration/cli-audit.test.ts',
  'test/integration/cli-mistakes.test.ts',
];
