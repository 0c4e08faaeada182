import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The HMAC signer is pure: it may use node:crypto, zod and keyway's error classes, nothing that does I/O. The sign: block's
// schema and its template parser import only zod and each other, so config/ (a lower layer than
// credentials/) can take those two files as they are when the grant types gain `hmac`.

const DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/credentials/signing/hmac');

function importsOf(file: string): string[] {
  const text = readFileSync(join(DIR, file), 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?\bfrom\s*'([^']+)'|\bimport\s*\(\s*'([^']+)'\s*\)/g)].map((m) => (m[1] ?? m[2]) as string);
}

describe('the hmac signing module', () => {
  it('imports only node:crypto, zod, keyway errors and its own files', () => {
    for (const file of readdirSync(DIR)) {
      for (const spec of importsOf(file)) {
        expect(['node:crypto', 'zod', '../../../errors/index.ts'].includes(spec) || /^\.\/[a-z-]+\.ts$/.test(spec), `${file} imports ${spec}`).toBe(true);
      }
    }
  });

  it('keeps the sign: schema free of credentials code', () => {
    expect(importsOf('sign-schema.ts').sort()).toEqual(['./template.ts', 'zod']);
    expect(importsOf('template.ts')).toEqual([]);
  });
});
