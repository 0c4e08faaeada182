import { relative } from 'node:path';
import type { Reporter, TestCase } from 'vitest/node';

// Prints each failed test the moment it fails, with its first error, on stderr: the default reporter
// keeps every failure's message for the end of the run, and a run stopped before its end (a CI
// limit, a person's Ctrl-C on a slow machine) then showed none of them (issue 86: 96 failures, no
// message). The default reporter still prints its full summary at the end.
export default class FailuresNow implements Reporter {
  onTestCaseResult(test: TestCase): void {
    const result = test.result();
    if (result.state !== 'failed') return;
    const where = relative(process.cwd(), test.module.moduleId);
    const first = result.errors?.[0];
    const message = first === undefined ? '(no error recorded)' : `${first.name ?? 'Error'}: ${first.message ?? ''}`.split('\n').slice(0, 8).join('\n');
    process.stderr.write(`\nFAILED ${where} > ${test.fullName}\n  ${message.replace(/\n/g, '\n  ')}\n`);
  }
}
