import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { notCanonical } from '../../src/audit/canonical.ts';
import { type AuditEvent, EVENT_FIELDS, expectedHash, GENESIS_HASH, parseLine, resealLine, sealLine, serializeEvent } from '../../src/audit/record.ts';
import { AuditDraft } from '../../src/proxy/audit-event.ts';

// serializeEvent writes most events as they are, naming their fields in order, and copies them into
// an ordered object only when it must (a replica to stamp, a query to cut). Whichever way a line is
// written, it must be the text the contract's field order gives, and the text verify rebuilds from the
// parsed line (expectedHash), or a correct log would fail `keyway audit verify`. (The second test
// found that a stamped replica used to go after every extra, so a replica's line with a `rule`
// failed verify.)

const EXTRAS = [
  'rule',
  'policy',
  'method_override',
  'path_override',
  'leak_redacted',
  'replay',
  'replayed',
  'message',
  'hint',
  'action',
  'changed',
  'replica',
] as const;

/** The line's text by the rule itself: fixed fields in order, extras sorted, query cut, replica stamped. */
function reference(event: AuditEvent, replica: string | undefined): string {
  const src: Record<string, unknown> = { ...event };
  if (replica !== undefined && src['replica'] === undefined) src['replica'] = replica;
  const out: Record<string, unknown> = {};
  for (const key of EVENT_FIELDS) out[key] = src[key];
  for (const key of Object.keys(src)
    .filter((k) => !(EVENT_FIELDS as readonly string[]).includes(k))
    .sort())
    out[key] = src[key];
  if (typeof out['path'] === 'string') out['path'] = out['path'].replace(/[?#].*$/s, '');
  return JSON.stringify(out);
}

// Any UTF-16 text (lone surrogates, controls, U+2028 included): verify holds each line to the exact
// bytes the writer gives it (canonical.ts), so every value keyway may write must come back the same.
const anyText = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 12 });
const extraValue = fc.oneof(
  fc.string({ maxLength: 12 }),
  anyText,
  fc.integer({ min: 0, max: 9 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(undefined),
  fc.record({ id: anyText, outcome: fc.string({ maxLength: 6 }), by: fc.option(anyText, { nil: undefined }) }),
);

/** An event with some extras, added in any order (as the stages add them), from a draft or a literal in any field order. */
const anyEvent = fc
  .record({
    fromDraft: fc.boolean(),
    path: fc.option(fc.oneof(fc.constantFrom('/a/b', '/x?token=s3cr3t', '/y#frag', '/'), fc.string({ maxLength: 10 })), { nil: null }),
    extras: fc.uniqueArray(fc.tuple(fc.constantFrom(...EXTRAS), extraValue), { maxLength: 4, selector: ([k]) => k }),
    shuffle: fc.boolean(),
    replica: fc.option(fc.constantFrom('r1', 'eu-2'), { nil: undefined }),
  })
  .map(({ fromDraft, path, extras, shuffle, replica }) => {
    let event: AuditEvent;
    if (fromDraft) {
      event = new AuditDraft({ method: 'GET', host: 'api.example.test', port: 443, client: '127.0.0.1', agent: 'bot', path }).event;
    } else {
      const fields: Array<[string, unknown]> = [
        ['ts', '2026-11-22T00:00:00.000Z'],
        ['id', 'id-1'],
        ['agent', null],
        ['grant', 'g'],
        ['decision', 'inject'],
        ['code', null],
        ['method', 'POST'],
        ['host', 'h.test'],
        ['port', 443],
        ['path', path],
        ['status', 200],
        ['duration_ms', 1.5],
        ['refreshed', false],
        ['client', '::1'],
      ];
      if (shuffle) fields.reverse();
      event = Object.fromEntries(fields) as unknown as AuditEvent;
    }
    for (const [key, value] of extras) (event as unknown as Record<string, unknown>)[key] = value;
    return { event, replica };
  });

describe('serializeEvent', () => {
  it('writes the fields in the documented order, extras sorted, query cut, replica stamped, whatever the event', () => {
    fc.assert(
      fc.property(anyEvent, ({ event, replica }) => {
        expect(serializeEvent(event, replica)).toBe(reference(event, replica));
      }),
      { numRuns: 500 },
    );
  });

  it('writes lines that verify recomputes to the same hash', () => {
    fc.assert(
      fc.property(anyEvent, ({ event, replica }) => {
        const { line, hash } = sealLine(serializeEvent(event, replica), 1, GENESIS_HASH);
        const parsed = parseLine(line.trimEnd());
        expect(parsed).not.toBeNull();
        expect(parsed!.hash).toBe(hash);
        expect(expectedHash(parsed!)).toBe(hash);
        // And byte for byte the line verify rebuilds: no false alarm from the canonical-form check.
        expect(notCanonical(line.trimEnd(), parsed!, resealLine(parsed!).line)).toBeNull();
      }),
      { numRuns: 500 },
    );
  });

  it('never writes a query string, in place or copied', () => {
    const event = new AuditDraft({ method: 'GET', host: 'h.test', port: 443, client: '::1', path: '/p?api_key=CANARY-1234' }).event;
    for (const replica of [undefined, 'r1']) expect(serializeEvent(event, replica)).not.toContain('CANARY');
  });

  it('leaves the event as it was', () => {
    const event = new AuditDraft({ method: 'GET', host: 'h.test', port: 443, client: '::1', path: '/p?q=1' }).event;
    const before = JSON.stringify(event);
    serializeEvent(event, 'r1');
    serializeEvent(event);
    expect(JSON.stringify(event)).toBe(before);
  });
});
