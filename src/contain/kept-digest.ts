import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readlinkSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { KeptChange, OverlayLayer } from './overlay.ts';

// What `keyway contain review ID` showed, as a short digest, so that `--apply` puts in place exactly
// that. The list of kept changes and the command's copies are in its scratch folder, which the
// command's uid owns (as root, nobody): any process of that uid could add a change, or rewrite a
// file, between the person reading the list and asking for it to be applied. The digest covers
// each change (folder, path, bytes of a name that is not UTF-8, kind, why) and what would land:
// a file's bytes, a link's target. review records the digest it showed in keyway's own home, and
// --apply refuses when the run no longer has it.

/** The first 16 hex digits of a SHA-256 over the kept changes and what each would put in place. */
export function keptDigest(kept: readonly KeptChange[], layers: readonly OverlayLayer[]): string {
  const hash = createHash('sha256');
  for (const change of kept) {
    hash.update(JSON.stringify([change.root, change.rel, change.raw ?? null, change.kind, change.why]));
    const layer = layers.find((l) => l.root === change.root);
    if (layer === undefined || change.raw !== undefined || change.rel === '') continue;
    const path = join(layer.upper, ...change.rel.split('/'));
    if (change.kind === 'file') hashFile(hash, path);
    else if (change.kind === 'symlink') hash.update(`link:${linkTarget(path)}`);
    hash.update('\n');
  }
  return hash.digest('hex').slice(0, 16);
}

/** A file's bytes, read without following a link or waiting on a FIFO; what is not a file hashes as such. */
function hashFile(hash: Hash, path: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    hash.update(`unreadable:${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    return;
  }
  try {
    if (!fstatSync(fd).isFile()) {
      hash.update('not a file');
      return;
    }
    hash.update('file:');
    const buffer = Buffer.allocUnsafe(1024 * 1024);
    for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) hash.update(buffer.subarray(0, read));
  } finally {
    closeSync(fd);
  }
}

function linkTarget(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '(none)';
  }
}
