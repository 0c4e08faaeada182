// keyway's version and the commit it was built from. A build (scripts/build.mjs for dist/,
// scripts/release/sea-bundle.mjs for the single executable) stamps both in as __KEYWAY_BUILD__
// (scripts/build-stamp.mjs), since an installed package or the executable has no .git beside it.
// Run from source there is no stamp: the version is the package.json one level above src/, and the
// commit is `source`.
import { readFileSync } from 'node:fs';

declare const __KEYWAY_BUILD__: { version: string; commit: string } | undefined;

function stamp(): { version: string; commit: string } | undefined {
  return typeof __KEYWAY_BUILD__ === 'undefined' ? undefined : __KEYWAY_BUILD__;
}

export function keywayVersion(): string {
  const stamped = stamp();
  if (stamped !== undefined) return stamped.version;
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

/** The commit keyway was built from (12 hex digits, `-dirty` if the tree had changes), `source` unbuilt. */
export function keywayCommit(): string {
  return stamp()?.commit ?? 'source';
}
