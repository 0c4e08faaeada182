import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lineText } from '../../src/audit/line-text.ts';
import { EVENT_FIELDS, type AuditEvent, serializeEvent, serializeOrdered } from '../../src/audit/record.ts';
import { AuditDraft } from '../../src/proxy/audit-event.ts';

// line-text.ts writes the audit line field by field instead of stringifying an ordered copy. Its bytes
// must be exactly the ordered copy's (serializeOrdered: what verify rebuilds and signed evidence
// covers), for anything an event may hold, or it must decline (null) so the generic way writes it.
// These properties throw at it what keyway never writes on purpose, as well as what it does.

/** Any UTF-16 text: controls, quotes, backslashes, U+2028, non-BMP pairs and lone surrogates. */
const anyText = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.constantFrom('', '"', '\\', '\u2028', '\ud800', '\udfff', '\ud83d\ude00', '\u007f', '\u0000', '\u001f', ' ', 'é', '/p?q=1', '/p#f'),
);

/** Numbers JSON writes oddly: -0, NaN, ±Infinity, exponents, the smallest and largest doubles, past 2^53. */
const oddNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(-0, Number.NaN, Infinity, -Infinity, 1e21, 1e-7, 5e-324, Number.MAX_VALUE, 2 ** 53 + 2, -(2 ** 63), 0.1 + 0.2),
);

const leaf = fc.oneof(anyText, oddNumber, fc.boolean(), fc.constant(null), fc.constant(undefined));

/** Any value a field may hold: leaves, objects and arrays of them, a Date, a function, a symbol, a toJSON. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: leaf },
  { weight: 1, arbitrary: fc.dictionary(anyText, leaf, { maxKeys: 3 }) },
  { weight: 1, arbitrary: fc.array(leaf, { maxLength: 3 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      new Date(0),
      () => 1,
      Symbol('s'),
      { toJSON: (key: string) => `key ${key}` },
      { toJSON: () => 'same' },
      Object.assign(Object.create(null), { a: 1 }),
      new String('boxed'),
      new Number(3),
      [undefined, () => 1],
    ),
  },
);

/** Field names: the fixed ones, the usual extras, the chain's, and the awkward (indexes, __proto__, toJSON, escapes). */
const anyKey = fc.oneof(
  fc.constantFrom(...EVENT_FIELDS),
  fc.constantFrom('rule', 'secret_source', 'phase', 'replica', 'message', 'hint', 'usage', 'approval', 'mcp'),
  fc.constantFrom('seq', 'prev', 'hash', '__proto__', 'toJSON', '0', '12', '01', '4294967295', '-1', '1.5', 'a"b', 'é', '\u0001', 'Z', '_'),
  anyText,
);

/** An event as a draft makes it (fixed fields in order, then extras) or any object at all. */
const anyEvent = fc
  .record({
    fromDraft: fc.boolean(),
    // A prototype with enumerable keys of its own: for...in lists them, the generic way does not.
    inherits: fc.option(fc.dictionary(anyKey, anyValue, { maxKeys: 3 }), { nil: undefined }),
    fixed: fc.array(fc.tuple(fc.constantFrom(...EVENT_FIELDS), anyValue), { maxLength: 6 }),
    extras: fc.array(fc.tuple(anyKey, anyValue), { maxLength: 6 }),
    replica: fc.option(fc.oneof(fc.constantFrom('r1', 'eu-2'), anyText), { nil: undefined }),
  })
  .map(({ fromDraft, inherits, fixed, extras, replica }) => {
    const event: Record<string, unknown> = fromDraft
      ? (new AuditDraft({ method: 'GET', host: 'api.example.test', port: 443, client: '127.0.0.1', agent: 'bot', path: '/a' }).event as unknown as Record<
          string,
          unknown
        >)
      : inherits !== undefined
        ? Object.create(inherits)
        : {};
    // defineProperty: a `__proto__` key becomes a field, as JSON.parse makes it, not the prototype.
    for (const [key, value] of [...fixed, ...extras]) Object.defineProperty(event, key, { value, enumerable: true, writable: true, configurable: true });
    return { event: event as unknown as AuditEvent, replica };
  });

function generic(event: AuditEvent, replica: string | undefined): { text: string } | { threw: string } {
  try {
    return { text: serializeOrdered(event, replica) };
  } catch (err) {
    return { threw: (err as Error).constructor.name };
  }
}

describe('lineText', () => {
  it('writes exactly the ordered copy, or declines, over any event', () => {
    let written = 0;
    fc.assert(
      fc.property(anyEvent, ({ event, replica }) => {
        const want = generic(event, replica);
        let got: string | null;
        try {
          got = lineText(event, replica);
        } catch (err) {
          // Only where the generic way throws too (a BigInt deep in a value, say).
          expect(want).toEqual({ threw: (err as Error).constructor.name });
          return;
        }
        if (got === null) return;
        written++;
        expect(want).toEqual({ text: got });
      }),
      { numRuns: 3000 },
    );
    // Not a property that holds by declining everything.
    expect(written).toBeGreaterThan(1000);
  });

  it('a BigInt fails the write, as the ordered copy does', () => {
    const event = new AuditDraft({ method: 'GET', host: 'h.test', port: 443, client: '::1' }).event as unknown as Record<string, unknown>;
    event['cost_usd'] = 10n;
    expect(() => serializeEvent(event as unknown as AuditEvent)).toThrow(TypeError);
    event['cost_usd'] = undefined;
    event['port'] = 1n;
    expect(() => serializeEvent(event as unknown as AuditEvent)).toThrow(TypeError);
  });

  it("takes the usual request's two lines itself: the outcome and the write-ahead line, extras out of order", () => {
    const draft = new AuditDraft({ method: 'GET', host: 'api.example.test', port: 443, client: '127.0.0.1', agent: 'bot', path: '/v1/x' });
    draft.event.grant = 'main';
    draft.event.secret_source = 'store';
    const sent = { ...draft.event, decision: 'inject' as const, code: null, status: null, phase: 'sent' as const };
    for (const event of [draft.event, sent]) {
      const text = lineText(event, undefined);
      expect(text).not.toBeNull();
      expect(text).toBe(serializeOrdered(event));
    }
    expect(lineText(sent, undefined)).toContain('"phase":"sent","secret_source":"store"}');
  });

  it('declines what an object would reorder or call: an index key, a toJSON field or value', () => {
    const base = () => new AuditDraft({ method: 'GET', host: 'h.test', port: 443, client: '::1' }).event as unknown as Record<string, unknown>;
    const indexed = base();
    indexed['7'] = 'x';
    const named = base();
    named['toJSON'] = 'x';
    const valued = base();
    valued['usage'] = { toJSON: (key: string) => key };
    for (const event of [indexed, named, valued]) {
      expect(lineText(event, undefined)).toBeNull();
      // The writer still writes it, the generic way.
      expect(serializeEvent(event as unknown as AuditEvent)).toBe(serializeOrdered(event as unknown as AuditEvent));
    }
    expect(serializeOrdered(indexed as unknown as AuditEvent).startsWith('{"7":"x","ts":')).toBe(true);
  });

  it('never writes a query string or fragment, on either path', () => {
    const event = new AuditDraft({ method: 'GET', host: 'h.test', port: 443, client: '::1', path: '/p?api_key=CANARY-1234#CANARY-2' }).event;
    for (const replica of [undefined, 'r1']) {
      expect(lineText(event, replica)).not.toContain('CANARY');
      expect(serializeEvent({ ...event, port: Number.NaN }, replica)).not.toContain('CANARY');
    }
  });
});
