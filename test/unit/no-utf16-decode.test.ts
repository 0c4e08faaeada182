import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Node 24.21's Buffer#toString('utf16le') (and 'ucs2', 'utf-16le') of a slice at an odd address
// with an odd length writes one byte past the string it allocates (nodejs/node#64697): a heap
// corruption that crashed the test workers later, in the GC. keyway's request path reads bodies
// a hostile agent chose, so src/ never decodes UTF-16 with Buffer#toString; TextDecoder is safe.

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');
const UTF16_DECODE = /\.toString\(\s*['"`](?:utf16le|utf-16le|ucs2|ucs-2)['"`]/i;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : /\.(?:ts|js|mjs)$/.test(name) ? [path] : [];
  });
}

describe('no UTF-16 decoding through Buffer#toString in src/ (Node 24.21 out-of-bounds write)', () => {
  it('finds none', () => {
    const found = sourceFiles(SRC).filter((file) => UTF16_DECODE.test(readFileSync(file, 'utf8')));
    expect(found.map((file) => relative(SRC, file))).toEqual([]);
  });

  it('would see one', () => {
    expect(UTF16_DECODE.test("body.subarray(1).toString('utf16le')")).toBe(true);
    expect(UTF16_DECODE.test('text.toString("ucs2")')).toBe(true);
    expect(UTF16_DECODE.test("body.toString('utf8')")).toBe(false);
  });
});
