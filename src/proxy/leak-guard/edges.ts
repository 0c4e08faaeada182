import { MIN_SLICE, type Plan } from './plan.ts';

// Slices of a needle at the edges of a body or a WebSocket message. An upstream that cuts an echo
// (answers Range: bytes=0-25, then bytes=26-60; truncates a field) hands the agent the secret in
// pieces, each of which is no needle. A body that begins with a needle's last characters, or ends
// with its first ones (MIN_SLICE or more), has them redacted; a base64 needle's slice may have line
// breaks in it, and one line break may come before (or after) it. Looked up by the first and last
// byte (leak-guard/plan.ts), so a body pays a few compares, not a search.

const CR = 0x0d;
const LF = 0x0a;
const isBreak = (byte: number | undefined) => byte === LF || byte === CR;
/** Break bytes in a row passed over in a slice (and before or after it, at the edge): one CRLF. */
const EDGE_BREAK = 2;

/**
 * How many bytes at the start of data are the end of a needle (MIN_SLICE characters or more, not
 * the whole needle): 0 for none, -1 when data is too short to tell yet (it begins like one that
 * needs more bytes) and more may come (not final).
 */
export function sliceAtStart(data: Buffer, plan: Plan, final: boolean): number {
  let first = 0;
  while (first < data.length && first < EDGE_BREAK && isBreak(data[first])) first++;
  if (first === data.length) return final ? 0 : -1;
  let best = 0;
  const index = plan.sliceStarts;
  for (let k = index.from[data[first]!]!, stop = index.from[data[first]! + 1]!; k < stop; k++) {
    const needle = plan.needles[index.needle[k]!]!;
    const at = index.at[k]!;
    const wrapped = plan.breakableSet.has(needle);
    let p = first;
    let j = at;
    for (let breaks = 0; j < needle.length && p < data.length; p++) {
      const byte = data[p]!;
      if (wrapped && isBreak(byte) && ++breaks <= EDGE_BREAK) continue;
      if (byte !== needle[j]) break;
      breaks = 0;
      j++;
    }
    if (j === needle.length) best = Math.max(best, p);
    else if (p === data.length && !final) return -1;
  }
  return best;
}

/** How many bytes at the end of data[from..] are the start of a needle (MIN_SLICE characters or more, not the whole needle); 0 for none. */
export function sliceAtEnd(data: Buffer, from: number, plan: Plan): number {
  let last = data.length;
  while (last > from && data.length - last < EDGE_BREAK && isBreak(data[last - 1])) last--;
  if (last === from) return 0;
  let best = 0;
  const index = plan.prefixEnds;
  for (let k = index.from[data[last - 1]!]!, stop = index.from[data[last - 1]! + 1]!; k < stop; k++) {
    const length = index.at[k]!;
    if (length < MIN_SLICE) break; // longest first: the rest are shorter still
    const needle = plan.needles[index.needle[k]!]!;
    const wrapped = plan.breakableSet.has(needle);
    let p = last;
    let j = length;
    for (let breaks = 0; j > 0 && p > from; ) {
      const byte = data[--p]!;
      if (wrapped && isBreak(byte) && ++breaks <= EDGE_BREAK) continue;
      if (byte !== needle[j - 1]) break;
      breaks = 0;
      j--;
    }
    if (j === 0) best = Math.max(best, data.length - p);
  }
  return best;
}
