import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { redactAll, redactText, SecretScanner, secretNeedles } from '../../src/proxy/leak-guard/index.ts';
import { bloomBitsFor, GramGate } from '../../src/proxy/leak-guard/gate.ts';
import { HeldNeedles } from '../../src/proxy/leak-guard/held.ts';
import { encodedForms } from '../../src/proxy/leak-guard/needles.ts';
import { HeldValues } from '../../src/proxy/stages/held-values.ts';

// The held needles (every real value keyway holds for an agent, searched on every answer) go
// through a gate that looks at a third of the positions: it must miss nothing the full search of
// the leak guard finds. Checked against that search itself, on data built to hold each kind of
// match (whole forms, slices at the edges, base64 wrapped in lines) and on random cuts of it.

const tokens = Array.from({ length: 12 }, (_, i) => `tok${i}_${randomBytes(24).toString('base64url')}`);
const all = [...new Set(tokens.flatMap((value) => secretNeedles({ kind: 'token', value })))];
const held = new HeldNeedles(all);

/** Text holding the token's forms the ways an echo can: whole, and base64 broken into 64-character lines. */
function echoes(token: string): Buffer[] {
  const forms = encodedForms(Buffer.from(token));
  const wrapped = Buffer.from(token).toString('base64').replace(/.{64}/g, '$&\n');
  return [...forms.map((f) => Buffer.concat([Buffer.from('{"note":"'), f, Buffer.from('","n":1}')])), Buffer.from(`-----\n${wrapped}\n-----`)];
}

describe('the held needles: a gate, then the leak guard’s own search', () => {
  it('finds every form of every held token, at every alignment, as the full search does', () => {
    for (const token of tokens.slice(0, 4)) {
      for (const body of echoes(token)) {
        for (const pad of ['', 'a', 'ab', 'abc']) {
          const data = Buffer.concat([Buffer.from(pad), body]);
          const full = redactAll(data, all, 'marker');
          expect(full.count, data.toString()).toBeGreaterThan(0);
          expect(held.redactWhole(data, 'marker').output.equals(full.output)).toBe(true);
        }
      }
    }
  });

  it('finds a slice at either edge of a body (a Range window) as the full search does', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: all.length - 1 }), fc.integer({ min: 6, max: 40 }), fc.boolean(), (n, length, atStart) => {
        const needle = all[n]!;
        const slice = atStart ? needle.subarray(Math.max(0, needle.length - length)) : needle.subarray(0, Math.min(length, needle.length));
        const data = atStart ? Buffer.concat([slice, Buffer.from(' and some text after it')]) : Buffer.concat([Buffer.from('some text before it '), slice]);
        const full = redactAll(data, all, 'mask');
        expect(held.redactWhole(data, 'mask').output.equals(full.output)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('streams: any cut of a body into chunks gives what the full scanner gives', () => {
    const body = Buffer.concat([Buffer.from('x'.repeat(50)), ...echoes(tokens[5]!), Buffer.from('tail text')]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: body.length - 1 }), { maxLength: 8 }), (cuts) => {
        const points = [0, ...[...new Set(cuts)].sort((a, b) => a - b), body.length];
        const chunks = points.slice(1).map((end, i) => body.subarray(points[i]!, end));
        const scan = held.scanner('marker');
        const gated = Buffer.concat([...chunks.flatMap((c) => scan.scan(c)), scan.end()]);
        const full = new SecretScanner(all, 'marker');
        const expected = Buffer.concat([...chunks.flatMap((c) => full.scan(c)), full.end()]);
        expect(gated.toString()).toBe(expected.toString());
        expect(gated.includes(tokens[5]!)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it('holds back nothing of a chunk that ends in bytes no needle has (an event stream’s events arrive one by one)', () => {
    const scan = held.scanner('marker');
    expect(Buffer.concat(scan.scan(Buffer.from(':\n\n'))).toString()).toBe(':\n\n');
    expect(Buffer.concat(scan.scan(Buffer.from('data: {"n":1}\n\n'))).toString()).toBe('data: {"n":1}\n\n');
    // A chunk ending in letters may be the start of a token: its last bytes wait for the next chunk.
    expect(Buffer.concat(scan.scan(Buffer.from('data: abc'))).toString()).toBe('data: ');
    expect(Buffer.concat([...scan.scan(Buffer.from('\n\n')), scan.end()]).toString()).toBe('abc\n\n');
  });

  it('lets through data that holds none, unchanged, and redacts header values and names', () => {
    const text = Buffer.from(JSON.stringify({ ok: true, items: Array.from({ length: 50 }, (_, i) => ({ id: i, sha: randomBytes(20).toString('hex') })) }));
    expect(held.redactWhole(text, 'marker').output.equals(text)).toBe(true);
    expect(held.redactValue('application/json; charset=utf-8')).toEqual({ text: 'application/json; charset=utf-8', count: 0 });
    const echoed = held.redactValue(`Bearer ${tokens[2]}`);
    expect(echoed.count).toBe(1);
    expect(echoed.text).toBe(redactText(`Bearer ${tokens[2]}`, all).text);
    expect(held.nameHolds(`x-${tokens[3]!.toLowerCase()}`)).toBe(true);
    expect(held.nameHolds('content-type')).toBe(false);
  });

  it('judges a header name or value once; what holds a needle is redacted every time, past the memory’s bound too', () => {
    const fresh = new HeldNeedles(all);
    const echo = `Bearer ${tokens[5]}`;
    const name = `x-${tokens[6]!.toLowerCase()}`;
    // Clean texts remembered, more than the memory holds (it starts again when full), with the
    // needle-holding ones asked between them: never remembered, never let through.
    for (let i = 0; i < 3000; i++) {
      const value = `v${i}-${randomBytes(6).toString('hex')}`;
      expect(fresh.redactValue(value)).toEqual({ text: value, count: 0 });
      expect(fresh.cleanValue(value)).toBe(true);
      expect(fresh.nameHolds(`x-h${i}`)).toBe(false);
      if (i % 500 === 0) {
        expect(fresh.cleanValue(echo)).toBe(false);
        expect(fresh.redactValue(echo)).toEqual({ text: redactText(echo, all).text, count: 1 });
        expect(fresh.nameHolds(name)).toBe(true);
      }
    }
    // The same answers again, from what was remembered.
    expect(fresh.redactValue('application/json')).toEqual({ text: 'application/json', count: 0 });
    expect(fresh.redactValue('application/json')).toEqual({ text: 'application/json', count: 0 });
    expect(fresh.nameHolds('content-type')).toBe(false);
    expect(fresh.nameHolds('content-type')).toBe(false);
    // A long clean value is not remembered (the memory's bound is by length too), and still passes.
    const long = 'a'.repeat(200);
    expect(fresh.redactValue(long)).toEqual({ text: long, count: 0 });
    expect(fresh.cleanValue(long)).toBe(false);
  });

  it('a gate is sized by its pieces, and a small one misses nothing either', () => {
    expect(bloomBitsFor(0)).toBe(12);
    expect(bloomBitsFor(32)).toBe(12);
    expect(bloomBitsFor(33)).toBe(13);
    expect(bloomBitsFor(633)).toBe(17);
    expect(bloomBitsFor(8192)).toBe(20);
    expect(bloomBitsFor(1_000_000)).toBe(21);
    // One token alone: its own filter of 2^14 bits or so, against the same search as above.
    const token = tokens[5] as string;
    const own = [...new Set(secretNeedles({ kind: 'token', value: token }))];
    const one = new HeldNeedles(own);
    for (const body of echoes(token)) {
      for (const pad of ['', 'a', 'ab', 'abc']) {
        const data = Buffer.concat([Buffer.from(pad), body]);
        const full = redactAll(data, own, 'marker');
        expect(full.count).toBeGreaterThan(0);
        expect(one.redactWhole(data, 'marker').output.equals(full.output)).toBe(true);
      }
    }
    // Data that holds none of it passes through the small filter untouched.
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 2048 }), (bytes) => {
        const data = Buffer.from(bytes);
        const full = redactAll(data, own, 'marker');
        expect(one.redactWhole(data, 'marker').output.equals(full.output)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('a gate over a needle too short for its pieces passes everything to the full search', () => {
    // An 8-character token: its base64 forms are under 16 bytes, too short for a probe of 8 between line breaks.
    expect(new GramGate(secretNeedles({ kind: 'token', value: 'short123' })).always).toBe(true);
    expect(new GramGate([Buffer.from('a-long-enough-needle-0123')]).always).toBe(false);
  });
});

describe('what keyway holds for an agent', () => {
  function storeOf(records: Record<string, { grant: string; agent: string; value: string }>) {
    const store = {
      generation: 1,
      entries: <T>(prefix: string) => Object.entries(records).filter(([id]) => id.startsWith(prefix)) as Array<[string, T]>,
    };
    return store;
  }

  it('every token captured under the agent’s grants, another agent’s included; none of a grant it may not use', () => {
    const records = {
      'captured:a': { grant: 'corp', agent: 'alice', value: 'alice-token-0123456789abcdef' },
      'captured:b': { grant: 'corp', agent: 'bob', value: 'bob-token-0123456789abcdef' },
      'captured:c': { grant: 'other', agent: 'carol', value: 'carol-token-0123456789abcdef' },
    };
    const store = storeOf(records);
    const values = new HeldValues(store);
    const bob = values.forAgent({ id: 'bob', grants: new Set(['corp']) })!;
    expect(bob.redactWhole(Buffer.from('x alice-token-0123456789abcdef y'), 'marker').count).toBe(1);
    expect(bob.redactWhole(Buffer.from('x carol-token-0123456789abcdef y'), 'marker').count).toBe(0);
    expect(values.forAgent({ id: 'dave', grants: new Set(['none']) })).toBeUndefined();
    // A capture (the store's generation moves) is held at once.
    Object.assign(records, { 'captured:d': { grant: 'corp', agent: 'alice', value: 'fresh-token-0123456789abcdef' } });
    store.generation++;
    expect(values.forAgent({ id: 'bob', grants: new Set(['corp']) })!.redactWhole(Buffer.from('fresh-token-0123456789abcdef'), 'marker').count).toBe(1);
  });

  it('the credentials served under a grant, for the agents that may use it', () => {
    const values = new HeldValues(storeOf({}));
    values.noteServed('api', { kind: 'token', value: 'served-secret-0123456789abcdef' });
    const agent = values.forAgent({ id: 'a', grants: undefined }, 0)!;
    expect(agent.redactWhole(Buffer.from('served-secret-0123456789abcdef'), 'marker').count).toBe(1);
    expect(values.forAgent({ id: 'b', grants: new Set(['elsewhere']) }, 0)).toBeUndefined();
  });
});
