import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The HMAC signer is pure: it may use node:crypto, zod and keyway's error classes, nothing that does I/O. The sign: block's
// schema and its template parser live in the type's fields (types/hmac/fields/: the config loader checks a grant's sign:
// block) and import only zod and each other.

const DIR = resolve(dirname(fileURLToPath(import.meta.url)), './signing');
const CONFIG_DIR = resolve(dirname(fileURLToPath(import.meta.url)), './fields');

function importsOf(file: string, dir = DIR): string[] {
  const text = readFileSync(join(dir, file), 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?\bfrom\s*'([^']+)'|\bimport\s*\(\s*'([^']+)'\s*\)/g)].map((m) => (m[1] ?? m[2]) as string);
}

describe('the hmac signing module', () => {
  it('imports only node:crypto, zod, keyway errors, the media-type reader and its own files', () => {
    for (const file of readdirSync(DIR)) {
      for (const spec of importsOf(file)) {
        const allowed = [
          'node:crypto',
          'zod',
          '../../../../errors/index.ts',
          '../../../../net/media-type.ts',
          '../fields/sign-schema.ts',
          '../fields/template.ts',
        ];
        expect(allowed.includes(spec) || /^\.\/[a-z-]+\.ts$/.test(spec), `${file} imports ${spec}`).toBe(true);
      }
    }
  });

  it('keeps the sign: schema free of credentials code', () => {
    expect(importsOf('sign-schema.ts', CONFIG_DIR).sort()).toEqual(['./template.ts', 'zod']);
    expect(importsOf('template.ts', CONFIG_DIR)).toEqual([]);
  });
});
