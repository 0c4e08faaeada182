// Collects the Buffers a body leaves behind before they pile up.
//
// A body reaches keyway as Buffers, one per TLS record (16 KiB each on a large body), and each one
// is dead as soon as it has been relayed. But V8 frees a Buffer's memory only when it collects the
// Buffer's small JavaScript object, and it starts a young-generation collection (a scavenge) when
// that generation fills with JavaScript objects, which relaying a body makes few of. So 20-30 MiB
// of dead Buffers build up between scavenges under a few 1 MiB transfers, in glibc's heap, and
// glibc keeps most of that heap after they are freed: it gives back only the top of it. Measured
// with bench/memory.ts (docs/perf/breakdown.md, thirteenth pass): RSS after s3 and s4 ~135 -> ~115 MiB.
//
// What this does: while the memory V8 counts outside its heap (Buffers above all) grows, it looks
// every 10 ms; once that has grown by 4 MiB over its lowest level since the last scavenge it ran,
// it runs one. Steady small requests do not set it off: V8's own scavenges free their Buffers first,
// and the mark follows them down. When nothing grows, it looks less and less often, down to four
// times a second (~1 µs each), so a burst after a quiet spell waits at most 250 ms for its first look.
// The look after a scavenge never runs another, so a client pushing bodies as fast as it can gets
// at most one every 20 ms (each well under a millisecond with little in flight).
//
// It needs `gc`, which --expose-gc gives (PROXY_NODE_FLAGS); without it, nothing is started.
import { getHeapStatistics } from 'node:v8';

const GROWTH_BYTES = 4 * 1024 * 1024;
const QUICKEST_MS = 10;
const SLOWEST_MS = 250;

/** Starts the watch if this process can collect on request; returns how to stop it. */
export function startBufferReclaim(collect: NodeJS.GCFunction | undefined = globalThis.gc): () => void {
  if (typeof collect !== 'function') return () => undefined;
  let mark = externalBytes();
  let last = mark;
  let delayMs = QUICKEST_MS;
  // V8 frees a collected Buffer's memory on another thread, a moment after the scavenge: the look
  // after one takes the level it finds as the new mark, rather than the level just after it.
  let settling = false;
  let timer: NodeJS.Timeout;
  const look = () => {
    const now = externalBytes();
    if (settling) {
      settling = false;
      mark = now;
    } else if (now >= mark + GROWTH_BYTES) {
      collect({ type: 'minor' });
      settling = true;
      delayMs = QUICKEST_MS;
    } else {
      if (now < mark) mark = now;
      delayMs = now > last ? QUICKEST_MS : Math.min(delayMs * 2, SLOWEST_MS);
    }
    last = now;
    timer = setTimeout(look, delayMs).unref();
  };
  timer = setTimeout(look, delayMs).unref();
  return () => clearTimeout(timer);
}

function externalBytes(): number {
  return getHeapStatistics().external_memory;
}
