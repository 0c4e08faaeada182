// A batch of serialised events sealed into the chain straight into the bytes that are appended:
// the same bytes as each line's sealLine (record.ts) joined and encoded, without the strings between.
//
// sealLine builds, per line, the chained text, the hashed text, the line, then the batch's text, and
// the append encodes that once more: several copies of every ~600-byte line, two lines per request
// under write-ahead. That young garbage makes scavenges more frequent, and each one promotes the
// requests then in flight (docs/perf/breakdown.md, "Garbage"). Here each line is encoded once,
// into the batch's buffer:
//
//   [prev "\n" open "}"]  hashed in place (open: the event's JSON with its last "}" cut, then
//                         ,"seq":N,"prev":"…"),
//   [open]                moved back over the prev it was hashed with,
//   [,"hash":"…"}\n]      written after it.
//
// A body that is not an event's JSON with at least one field (too short, or not ending in "}") is
// sealed the string way (sealLine), which is what every line was before.

import { hash } from 'node:crypto';
import { sealLine } from './record.ts';

const NEWLINE = 0x0a;
const CLOSE = 0x7d; // }
/** The longest UTF-8 a UTF-16 code unit takes (a surrogate pair takes 4 for two units). */
const MAX_BYTES_PER_UNIT = 3;
/** `"seq":N,` and `,"hash":"<64 hex>"}\n` around a line, with room to spare. */
const CHAIN_FIELDS_BYTES = 128;
/** A hash as the chain writes them (64 hex digits), for sizing. */
const GENESIS_LIKE = '0'.repeat(64);

export interface SealedBatch {
  /** The lines, each ending in a newline, as they are appended. */
  bytes: Buffer;
  /** The chain head after the last line. */
  seq: number;
  hash: string;
}

/** Seals `bodies` after the head (`seq`, `prev`): lines seq+1, seq+2, …, encoded once. */
export function sealBatch(bodies: readonly string[], seq: number, prev: string): SealedBatch {
  let bound = 0;
  for (const body of bodies) bound += body.length * MAX_BYTES_PER_UNIT + CHAIN_FIELDS_BYTES;
  // prev, written twice per line at most (hashed, and quoted in the open part): the first line's is
  // the head's (any text a file held); after that, 64 hex digits.
  const prevBound = (text: string) => text.length * MAX_BYTES_PER_UNIT * 3 + 8;
  bound += prevBound(prev) + bodies.length * prevBound(GENESIS_LIKE);
  const out = Buffer.allocUnsafe(bound);
  let at = 0;
  for (const body of bodies) {
    seq += 1;
    if (body.length <= 2 || body.charCodeAt(body.length - 1) !== CLOSE) {
      const sealed = sealLine(body, seq, prev);
      at += out.write(sealed.line, at, 'utf8');
      prev = sealed.hash;
      continue;
    }
    const start = at;
    at += out.write(prev, at, 'utf8');
    out[at++] = NEWLINE;
    const open = at;
    at += out.write(body, at, 'utf8') - 1; // its "}" cut
    at += out.write(`,"seq":${seq},"prev":${JSON.stringify(prev)}`, at, 'utf8');
    out[at++] = CLOSE;
    prev = hash('sha256', out.subarray(start, at), 'hex');
    // The line starts where its hashed prefix did: moved back over it, without the "}".
    out.copyWithin(start, open, at - 1);
    at = start + (at - 1 - open);
    at += out.write(`,"hash":"${prev}"}\n`, at, 'latin1');
  }
  return { bytes: out.subarray(0, at), seq, hash: prev };
}
