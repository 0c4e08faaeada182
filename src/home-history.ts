// Never fresh over history. A home whose store file is gone but whose audit log, audit head or
// master key file are still there was used before: the store was deleted, lost or mis-restored.
// Making a new empty store there would silently turn a configured keyway into an empty one (and,
// with `unmatched: tunnel`, send the agents' requests out with no credential). A master key file
// that is gone beside a store is the same story the other way: a new key cannot open the store,
// and writing one would change the home on a start that fails anyway.
//
// What counts as history is what keyway itself writes only after a store exists (the audit log and
// its head) or together with the first store (the master key file). A key given by
// KEYWAY_MASTER_KEY or KEYWAY_MASTER_KEY_FILE says nothing about this home, so it is not evidence.

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KeywayError } from './errors/index.ts';
import { listRotated } from './audit/chain-files.ts';
import type { KeywayPaths } from './paths.ts';
import { MASTER_KEY_FILENAME } from './credentials/store/master-key.ts';
import { WRAPPED_KEY_FILENAME } from './credentials/store/key-wrap.ts';

/** The files in the home that say it held a store before; empty for a new home. */
export async function historyEvidence(paths: KeywayPaths): Promise<string[]> {
  const found: string[] = [];
  if (nonEmpty(paths.audit)) found.push(paths.audit);
  const rotated = await listRotated(paths.audit).catch(() => []);
  if (rotated.length > 0) found.push(`${rotated.length} rotated audit file${rotated.length === 1 ? '' : 's'} beside ${paths.audit}`);
  if (existsSync(paths.auditHead)) found.push(paths.auditHead);
  for (const name of [MASTER_KEY_FILENAME, WRAPPED_KEY_FILENAME]) {
    const path = join(paths.dataDir, name);
    if (existsSync(path)) found.push(path);
  }
  return found;
}

function nonEmpty(path: string): boolean {
  try {
    return statSync(path).size > 0;
  } catch {
    return false;
  }
}

/** The store file is missing while the home has history: start nothing, write nothing, say how to restore. */
export function storeMissing(paths: KeywayPaths, evidence: readonly string[]): KeywayError {
  return new KeywayError(
    'store_missing',
    `store_missing: the store ${paths.store} is missing, but this home was used before (${evidence.join(', ')}). ` +
      `Restore ${paths.store} from a backup (it opens only with the master key it was sealed with); ` +
      `to start anew with an empty store on purpose, run \`keyway start --fresh-store\` (audited). Nothing was changed.`,
  );
}

/** The store is there but no master key is: a new key could never open it. */
export function keyMissing(storeName: string, paths: KeywayPaths): KeywayError {
  return new KeywayError(
    'key_missing',
    `key_missing: the store ${storeName} exists but its master key does not: ${join(paths.dataDir, MASTER_KEY_FILENAME)} is missing ` +
      `and neither KEYWAY_MASTER_KEY nor KEYWAY_MASTER_KEY_FILE is set. Restore the key file from a backup, or give the key ` +
      `in KEYWAY_MASTER_KEY; a new key cannot open this store. Nothing was changed.`,
  );
}
