// The README's count of tests under "Development" stays true (issue 36, item 13): within 10% of the
// tests the files declare (each it()/test() call site once, it.each's rows not expanded).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );
}

describe("the README's test count", () => {
  it('is within 10% of the tests the files declare', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const development = readme.slice(readme.indexOf('## Development'));
    const stated = /About ([\d,]+) tests/.exec(development)?.[1];
    expect(stated, 'the README says how many tests `npm test` runs').toBeDefined();
    const declared = testFiles(join(root, 'test'))
      .map((f) => readFileSync(f, 'utf8').match(/^\s*(?:it|test)(?:\.\w+)*\(/gm)?.length ?? 0)
      .reduce((a, b) => a + b, 0);
    const count = Number(stated!.replace(/,/g, ''));
    expect(Math.abs(count - declared) / declared, `README says ${count}, the files declare ${declared}`).toBeLessThanOrEqual(0.1);
  });
});
