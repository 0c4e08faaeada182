import { execFileSync } from 'node:child_process';
import { mkdirSync, rmdirSync } from 'node:fs';

/**
 * Swaps two names in one step (renameat2 with RENAME_EXCHANGE, through python3's ctypes: Node has no
 * binding), and returns when it happened (epoch ms; starting python3 can take a while on a busy
 * machine). Two steps (move one aside, then put the other in place) race the audit writer: a file
 * operation of its already on the thread pool can land between them, and make a missing file or
 * folder again, which the second rename then overwrites with its lines.
 */
export function exchangePaths(a: string, b: string): number {
  return Number(
    execFileSync('python3', [
      '-c',
      'import ctypes,os,sys,time\nlibc=ctypes.CDLL(None,use_errno=True)\nif libc.renameat2(-100,sys.argv[1].encode(),-100,sys.argv[2].encode(),2)!=0: sys.exit(os.strerror(ctypes.get_errno()))\nprint(time.time()*1000)',
      a,
      b,
    ]).toString(),
  );
}

/** Puts an empty folder where the file `path` is, in one step; the file waits at `path.aside`. */
export function folderInPlaceOf(path: string): void {
  mkdirSync(`${path}.aside`);
  exchangePaths(path, `${path}.aside`);
}

/** Undoes folderInPlaceOf, in one step: the file is back at `path`, and the folder is removed. */
export function fileBackInPlace(path: string): void {
  exchangePaths(`${path}.aside`, path);
  rmdirSync(`${path}.aside`);
}
