import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeywayError } from '../../src/errors/index.ts';
import { Store } from '../../src/credentials/store/index.ts';
import { LONG, report, scale } from './scale.ts';

// Damage to the store file, as a failing disk or a hostile hand would do it: single flipped bits
// anywhere in the file, and records swapped or moved under another id. Every one must be refused
// with store_corrupt: the store never hands out a value from a file that is not exactly what it wrote.

const FLIPS = scale(1_000, 1_000);
const SWAPS = scale(100, 100);

interface Sealed {
  n: string;
  c: string;
  t: string;
}
interface Doc {
  format: string;
  version: number;
  cipher: string;
  check: Sealed;
  records: Record<string, Sealed>;
}

const key = randomBytes(32);
let dir: string;
let path: string;

/** A store with records like keyway's own: grants, secrets, OAuth state, odd ids, small and large values. */
async function makeStore(records: number): Promise<Buffer> {
  await rm(path, { force: true });
  const store = await Store.open(path, key);
  await store.update((d) => {
    for (let i = 0; i < records; i++) {
      const kind = ['grant:', 'secret:', 'oauth:', 'agent:', 'x'][i % 5]!;
      d.set(`${kind}${i}`, { i, token: randomBytes(8 + ((i * 13) % 120)).toString('base64url'), list: [i, null, true] });
    }
  });
  return readFile(path);
}

/** Opens the file as it now is; returns the error code, or 'opened' if it opened. */
async function verdict(): Promise<{ code: string; message: string }> {
  return Store.open(path, key).then(
    () => ({ code: 'opened', message: '' }),
    (e: unknown) => (e instanceof KeywayError ? { code: e.code, message: e.message } : { code: 'crash', message: String(e) }),
  );
}

/** Writes a document in exactly the layout keyway writes, so only the cryptography can object. */
async function writeDoc(doc: Doc): Promise<void> {
  const records = Object.create(null) as Record<string, Sealed>;
  for (const id of Object.keys(doc.records).sort()) records[id] = doc.records[id]!;
  await writeFile(path, `${JSON.stringify({ ...doc, records }, null, 2)}\n`);
}

describe('crashes: tampering with the store file', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyway-tamper-'));
    path = join(dir, 'store.json');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(`every flipped bit or changed byte is refused as store_corrupt (${FLIPS} random flips${LONG ? ', then every bit of a small store' : ''})`, async () => {
    const good = await makeStore(20);
    const outcomes: Record<string, number> = {};
    const escaped: string[] = [];
    // Half single flipped bits (a failing disk), half a byte replaced by any other value.
    const flip = async (at: number, mask: number) => {
      const bytes = Buffer.from(good);
      bytes[at] = bytes[at]! ^ mask;
      await writeFile(path, bytes);
      const { code } = await verdict();
      outcomes[code] = (outcomes[code] ?? 0) + 1;
      if (code !== 'store_corrupt' && escaped.length < 10) escaped.push(`byte ${at} xor ${mask}: ${code}`);
    };
    for (let i = 0; i < FLIPS; i++) await flip(randomInt(good.length), i % 2 === 0 ? 1 << randomInt(8) : randomInt(1, 256));

    let exhaustive = 0;
    if (LONG) {
      const small = await makeStore(3);
      const copy = Buffer.from(small);
      for (let at = 0; at < copy.length; at++) {
        for (let bit = 0; bit < 8; bit++) {
          const bytes = Buffer.from(copy);
          bytes[at] = bytes[at]! ^ (1 << bit);
          await writeFile(path, bytes);
          const { code } = await verdict();
          outcomes[`exhaustive_${code}`] = (outcomes[`exhaustive_${code}`] ?? 0) + 1;
          if (code !== 'store_corrupt' && escaped.length < 10) escaped.push(`small store, byte ${at} bit ${bit}: ${code}`);
          exhaustive++;
        }
      }
    }
    report('crashes', {
      flips: FLIPS,
      flips_detected: outcomes['store_corrupt'] ?? 0,
      exhaustive_flips: exhaustive,
      exhaustive_detected: outcomes['exhaustive_store_corrupt'] ?? 0,
      outcomes,
    });
    expect(escaped).toEqual([]);
    expect(outcomes['store_corrupt']).toBe(FLIPS);
  });

  it(`every swapped or moved record is refused, naming the record (${SWAPS} swaps)`, async () => {
    await makeStore(20);
    const original = JSON.parse(await readFile(path, 'utf8')) as Doc;
    const ids = Object.keys(original.records);
    const kinds = [
      'swap two records',
      'move a record under another id',
      'rename a record',
      'swap a record with the check',
      'swap ciphertext and tag only',
    ] as const;
    const detected: Record<string, number> = {};
    const escaped: string[] = [];
    for (let i = 0; i < SWAPS; i++) {
      const doc = structuredClone(original);
      const kind = kinds[i % kinds.length]!;
      const a = ids[randomInt(ids.length)]!;
      let b = ids[randomInt(ids.length)]!;
      while (b === a) b = ids[randomInt(ids.length)]!;
      const ra = doc.records[a]!;
      const rb = doc.records[b]!;
      if (kind === 'swap two records') [doc.records[a], doc.records[b]] = [rb, ra];
      else if (kind === 'move a record under another id') doc.records[b] = ra;
      else if (kind === 'rename a record') {
        delete doc.records[a];
        doc.records[`${a}-renamed`] = ra;
      } else if (kind === 'swap a record with the check') [doc.check, doc.records[a]] = [ra, doc.check];
      else
        [doc.records[a], doc.records[b]] = [
          { ...ra, c: rb.c, t: rb.t },
          { ...rb, c: ra.c, t: ra.t },
        ];
      await writeDoc(doc);
      const { code, message } = await verdict();
      // The error must say which record failed, so a user knows what the damage touched.
      const named = /record "|"check"/.test(message);
      if (code === 'store_corrupt' && named) detected[kind] = (detected[kind] ?? 0) + 1;
      else if (escaped.length < 10) escaped.push(`${kind} (${a}, ${b}): ${code} ${message}`);
    }
    const total = Object.values(detected).reduce((x, y) => x + y, 0);
    report('crashes', { swaps: SWAPS, swaps_detected: total, by_kind: detected });
    expect(escaped).toEqual([]);
    expect(total).toBe(SWAPS);
  });
});
