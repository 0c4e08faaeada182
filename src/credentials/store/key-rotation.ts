// keyway key rotate (issue 49): a new master key, every record sealed again under it in one write,
// the store readable and the proxy serving throughout. The order makes every crash recoverable:
//   1. the audit keys are pinned in the store (AUDIT_KEYS_RECORD, open-home.ts), so the audit chain's head key and
//      the checkpoint signing key (whose public half others hold) stay what they were;
//   2. the new key is written beside the current one as a pending key (master.key.next, or
//      master.key.kms.next wrapped by the KMS): nothing reads it yet;
//   3. the store is sealed again under the new key (Store.rekey): from here the file opens only with
//      the pending key, which every process finds (pendingOrCurrentKey: a running proxy's store
//      follows on its next read; a start after a crash here promotes it);
//   4. the pending key replaces the current one (a rename), its `key.rotate` audit line noted as owed
//      just before (owed-key-lines.ts), so the line is written even when the next open finishes it.
import { existsSync } from 'node:fs';
import { readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoreKeyConfig } from '../../config/secret-sources.ts';
import { kmsWrapper, readWrappedKey, WRAPPED_KEY_FILENAME, wrappedKeyPath } from './key-wrap.ts';
import { MASTER_KEY_FILENAME } from './master-key.ts';
import { dropOwedNote, type Finisher, oweKeyLine } from './owed-key-lines.ts';
import { syncDir } from '../../files/atomic-write.ts';

/** The store record holding the audit keys once a rotation pinned them (open-home.ts reads it). */
export const AUDIT_KEYS_RECORD = 'keyway:audit-keys';

const PENDING_SUFFIX = '.next';

export function pendingPaths(dataDir: string): { plain: string; wrapped: string } {
  return { plain: join(dataDir, MASTER_KEY_FILENAME + PENDING_SUFFIX), wrapped: join(dataDir, WRAPPED_KEY_FILENAME + PENDING_SUFFIX) };
}

/** A pending key (step 2), or undefined when no rotation is under way. */
export async function pendingKey(dataDir: string, wrap: StoreKeyConfig | undefined, env: NodeJS.ProcessEnv): Promise<Buffer | undefined> {
  const { plain, wrapped } = pendingPaths(dataDir);
  if (existsSync(wrapped)) {
    if (wrap === undefined || wrap === 'file') return undefined;
    const file = await readWrappedKey(dataDir, WRAPPED_KEY_FILENAME + PENDING_SUFFIX);
    return file === undefined ? undefined : (await kmsWrapper(wrap, env)).unwrap(Buffer.from(file.ciphertext, 'base64'), file.key_id);
  }
  // A rename (step 4) may take the file between the check and the read: then there is none pending.
  const text = (await readFile(plain, 'utf8').catch(() => '')).trim();
  if (text === '') return undefined;
  const key = Buffer.from(text, 'base64');
  return key.length === 32 && key.toString('base64') === text ? key : undefined;
}

/**
 * Step 4: the pending key becomes the current one. The rotation's `key.rotate` line is noted as owed
 * first (owed-key-lines.ts), so a crash anywhere from here on leaves it for the next audit writer;
 * the next open that finishes a rotation cut short writes the line too. True when this call made
 * the pending key current; false when there was none (another process promoted it first).
 */
export async function promotePending(dataDir: string, finisher: Finisher = 'open'): Promise<boolean> {
  const { plain, wrapped } = pendingPaths(dataDir);
  const [from, to] = existsSync(wrapped) ? [wrapped, wrappedKeyPath(dataDir)] : [plain, join(dataDir, MASTER_KEY_FILENAME)];
  const text = await readFile(from, 'utf8').catch(() => undefined);
  if (text === undefined) return false;
  const note = await oweKeyLine(
    dataDir,
    finisher === 'open'
      ? { action: 'key.rotate', changed: 'master_key', message: 'a rotation cut short was finished when the store was next opened' }
      : { action: 'key.rotate', changed: 'master_key', actor: finisher.actor },
    text,
  );
  try {
    await rename(from, to);
  } catch (err) {
    // Another process promoted it between the read and the rename: its note is this one (same key file).
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    await dropOwedNote(note);
    throw err;
  }
  await syncDir(dataDir);
  return true;
}

/** A rotation abandoned before step 3 (the store still opens with the current key): its pending key is dropped. */
export async function dropPending(dataDir: string): Promise<void> {
  const { plain, wrapped } = pendingPaths(dataDir);
  for (const path of [plain, wrapped]) await unlink(path).catch(() => undefined);
}
