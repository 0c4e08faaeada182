// keyway's version, from the package.json it ships with: src/ and dist/ both sit one level
// below it, in a checkout and in an installed package alike.
import { readFileSync } from 'node:fs';

export function keywayVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
