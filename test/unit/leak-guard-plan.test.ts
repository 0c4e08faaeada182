import { randomBytes } from 'node:crypto';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { nameHoldsNeedle, redactAll, secretNeedles } from '../../src/proxy/leak-guard/index.ts';
import { type ByteIndex, MIN_SLICE, planFor } from '../../src/proxy/leak-guard/plan.ts';

// The search plan's per-position indexes (leak-guard/plan.ts). A plan lives as long as its secret is
// remembered (256 secrets), and a rotating OAuth grant brings a new secret every token lifetime: kept
// as one small object per position of every needle, they grew the live heap by ~140 KiB a token
// (~35 MiB over 256), which every full collection marked; the soak's p99 doubled over ten minutes
// (issue 22). They are typed arrays now, and must still list exactly the same pairs in the same order.

type Pair = [needle: Buffer, at: number];

const pairsOf = (index: ByteIndex, needles: readonly Buffer[], byte: number): Pair[] => {
  const out: Pair[] = [];
  for (let k = index.from[byte]!; k < index.from[byte + 1]!; k++) out.push([needles[index.needle[k]!]!, index.at[k]!]);
  return out;
};

const token = () => `kws-at-${randomBytes(24).toString('base64url')}`;

describe('the leak guard search plan', () => {
  it('indexes every (needle, position) pair by byte: slice starts in needle order, prefix ends longest first', () => {
    for (const value of [token(), 'sk/abc+def=ghi jk!', 'kw"canary\\7f/3a9c+1e=5b2d']) {
      const needles = secretNeedles({ kind: 'token', value });
      const plan = planFor(needles);
      for (let byte = 0; byte < 256; byte++) {
        // The definitions, as arrays of pairs (what the plan held before it was packed).
        const starts: Pair[] = [];
        const ends: Pair[] = [];
        for (const needle of needles) {
          for (let at = 1; at <= needle.length - MIN_SLICE; at++) if (needle[at] === byte) starts.push([needle, at]);
          for (let length = 1; length < needle.length; length++) if (needle[length - 1] === byte) ends.push([needle, length]);
        }
        ends.sort((a, b) => b[1] - a[1]); // stable: needle order among equal lengths
        expect(pairsOf(plan.sliceStarts, plan.needles, byte)).toEqual(starts);
        expect(pairsOf(plan.prefixEnds, plan.needles, byte)).toEqual(ends);
      }
    }
  });

  it('keeps its per-position indexes in typed arrays, not in objects on the V8 heap', () => {
    const plan = planFor(secretNeedles({ kind: 'token', value: token() }));
    const positions = plan.needles.reduce((sum, n) => sum + n.length, 0);
    expect(plan.prefixEnds.at.length).toBeGreaterThan(positions / 2);
    for (const index of [plan.sliceStarts, plan.prefixEnds]) {
      for (const array of [index.from, index.needle, index.at]) expect(ArrayBuffer.isView(array)).toBe(true);
    }
  });

  it('256 remembered secrets of a rotating grant, with their plans for bodies and header names, keep under 10 MiB of V8 heap', () => {
    // A full collection on demand, without --expose-gc on the command line.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const used = () => {
      gc();
      gc();
      return getHeapStatistics().used_heap_size;
    };
    const before = used();
    for (let i = 0; i < 256; i++) {
      const needles = secretNeedles({ kind: 'token', value: token() });
      redactAll(Buffer.from('{"ok":true}'), needles);
      nameHoldsNeedle('x-request-id', needles);
    }
    // Was ~45 MiB (~140 KiB a body plan, and a smaller plan for header names); now ~3.
    expect((used() - before) / 1048576).toBeLessThan(10);
  });
});
