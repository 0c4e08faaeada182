// The PostgreSQL driver, loaded the first time keyway connects to a database. Most installs keep
// the store and the audit log in files and never do; loaded at start, pg and its parsers cost ~2 MiB
// of resident memory for the proxy's whole life (measured on Node 24 under keyway's runtime flags).
// Types come from pg's own declarations (type-only imports are erased).
import type pg from 'pg';

let driver: Promise<typeof pg> | undefined;

export function loadPg(): Promise<typeof pg> {
  driver ??= import('pg').then((module) => module.default);
  return driver;
}
