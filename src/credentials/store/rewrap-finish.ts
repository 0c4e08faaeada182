// `keyway key rewrap` from data/master.key writes data/master.key.kms, then removes the plain file;
// a kill between the two leaves both (issue 60). What each pair of files means, with store.key
// naming a KMS:
// - master.key.kms and master.key holding the same 32 bytes: a rewrap cut short, and only that. The
//   next open (or the next `key rewrap`) finishes it: the plain file removed, the folder synced, the
//   `key.rewrap` line owed. The wrapped key was just unwrapped by the KMS to those bytes, so the key
//   is never left without a copy.
// - master.key.kms and a master.key with another key, or one that is not a key: no crash of keyway
//   leaves that (a backup put back beside a wrapped key, a copy from another home). Refused, both
//   kept: which one opens the store is for a person to say.
// - master.key alone: a rewrap not begun (its wrapped key is written whole or not at all), refused
//   by master-key.ts with the fix, `keyway key rewrap`.
import { unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { KeywayError } from '../../errors/index.ts';
import { syncDir } from '../../files/atomic-write.ts';
import { type Finisher, oweKeyLine } from './owed-key-lines.ts';

export interface PlainLeftover {
  /** data/master.key. */
  plainPath: string;
  /** What it holds, decoded; undefined when it holds no key. */
  plainKey: Buffer | undefined;
  /** The key master.key.kms unwraps to, and its ciphertext (base64) as the file holds it. */
  key: Buffer;
  ciphertext: string;
  wrappedPath: string;
}

/** Removes the plain copy of a key now wrapped, once it is proven the same key; refuses a plain file with anything else. */
export async function removePlainCopy(dataDir: string, leftover: PlainLeftover, finisher: Finisher): Promise<void> {
  const { plainPath, plainKey, key, wrappedPath } = leftover;
  if (plainKey === undefined || !plainKey.equals(key)) {
    const what = plainKey === undefined ? `holds no valid key beside ${wrappedPath}` : `holds another key than the one ${wrappedPath} wraps`;
    throw new KeywayError(
      'master_key_invalid',
      `${plainPath} ${what}: no rewrap leaves that, so keyway uses neither; keep the one that opens the store (a backup of the home says which) and move the other away`,
    );
  }
  // Noted before the removal: a crash right after it still leaves the line owed.
  await oweKeyLine(
    dataDir,
    finisher === 'open'
      ? { action: 'key.rewrap', changed: 'store.key', message: 'a rewrap cut short was finished when the store was next opened: the plain master.key removed' }
      : { action: 'key.rewrap', changed: 'store.key', actor: finisher.actor },
    leftover.ciphertext,
  );
  await unlink(plainPath).catch((err: NodeJS.ErrnoException) => {
    // Another process finished it first.
    if (err.code !== 'ENOENT') throw err;
  });
  await syncDir(dirname(plainPath));
}
