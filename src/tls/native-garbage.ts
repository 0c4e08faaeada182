// OpenSSL contexts are native memory that V8 does not see: a discarded SecureContext (about 40 KiB
// of OpenSSL state) is freed only when a full garbage collection finds its small JS wrapper, and on
// a small, steady heap that can take many minutes. Measured on Node 24 with keyway's runtime flags:
// creating contexts for new hosts one after another grew RSS by ~28 MiB before it levelled off,
// whether 1 or 64 were kept; with a full collection after every 100 discarded, by ~8 MiB. The soak
// (one new host a second) showed the same ~26 MiB over its first ten minutes.
//
// So the context cache counts what it discards and asks for a full collection after DISCARDS_PER_GC
// of them, off the handshake path. A full collection of keyway's heap takes a few ms; an agent that
// cycles host names pays far more in leaf minting (~1 ms a host) than it causes here.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const DISCARDS_PER_GC = 100;

/** V8's gc(), taken without exposing it on the main global (the documented setFlagsFromString use). */
function loadGc(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

let gc: (() => void) | undefined | null = null;
let discarded = 0;
let scheduled = false;
let collections = 0;

/** Full collections asked for so far (for tests and status). */
export function nativeCollections(): number {
  return collections;
}

/** Notes one discarded native object; every DISCARDS_PER_GC of them, a full collection runs soon after. */
export function noteNativeDiscard(): void {
  discarded++;
  if (discarded < DISCARDS_PER_GC || scheduled) return;
  scheduled = true;
  setImmediate(() => {
    scheduled = false;
    discarded = 0;
    if (gc === null) gc = loadGc();
    if (gc) {
      gc();
      collections++;
    }
  }).unref();
}
