import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChainChecker } from '../../src/audit/chain.ts';
import { type AuditEvent, GENESIS_HASH, parseLine, sealLine, serializeEvent } from '../../src/audit/record.ts';
import { sealBatch } from '../../src/audit/seal-batch.ts';
import { AuditDraft } from '../../src/proxy/audit-event.ts';

// seal-batch.ts writes a batch's lines straight into the bytes that are appended. They must be the
// bytes sealLine gives line by line, joined and encoded (what keyway wrote before, what verify and
// signed evidence rebuild), for any text a body or a head may hold.

/** The old way: each line sealed as a string after the last, the batch encoded once. */
function sealedTheStringWay(bodies: readonly string[], seq: number, prev: string): { bytes: Buffer; seq: number; hash: string } {
  let text = '';
  for (const body of bodies) {
    const sealed = sealLine(body, ++seq, prev);
    text += sealed.line;
    prev = sealed.hash;
  }
  return { bytes: Buffer.from(text, 'utf8'), seq, hash: prev };
}

/** Any UTF-16 text: controls, quotes, non-ASCII, non-BMP pairs and lone surrogates. */
const anyText = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', '}', '{}', '{', 'x}', '{"a":1}', '\ud800}', 'é}', '{"p":"\ud83d\ude00"}', '\u2028'),
);

/** A body as the writer queues it (an event's JSON), or any text at all. */
const anyBody = fc.oneof(
  anyText.map((t) => JSON.stringify({ host: t, path: `/${t}` })),
  fc.dictionary(anyText, anyText, { maxKeys: 4 }).map((o) => JSON.stringify(o)),
  anyText.map((t) => `{${t}}`),
  anyText,
);

describe('sealBatch', () => {
  it('writes the bytes sealLine writes, line by line, for any bodies and any head', () => {
    fc.assert(
      fc.property(
        fc.array(anyBody, { maxLength: 8 }),
        fc.nat({ max: 2 ** 40 }),
        fc.oneof(
          fc.constant(GENESIS_HASH),
          fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')),
          anyText,
        ),
        (bodies, seq, prev) => {
          const want = sealedTheStringWay(bodies, seq, prev);
          const got = sealBatch(bodies, seq, prev);
          expect(got.seq).toBe(want.seq);
          expect(got.hash).toBe(want.hash);
          expect(got.bytes.equals(want.bytes)).toBe(true);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('seals real audit events into a chain verify accepts', () => {
    const draft = new AuditDraft({ agent: 'ag\u00e9nt', host: 'api.example.test', port: 443, method: 'GET', path: '/v1/\u2028', client: '127.0.0.1' });
    draft.event.grant = 'g';
    draft.event.decision = 'inject';
    const sent: AuditEvent = { ...draft.event, phase: 'sent' };
    const outcome: AuditEvent = { ...draft.event, status: 200, secret_source: 'store' };
    const { bytes, seq, hash } = sealBatch([serializeEvent(sent), serializeEvent(outcome)], 0, GENESIS_HASH);
    const lines = bytes.toString('utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((line) => parseLine(line)?.seq)).toEqual([1, 2]);
    expect(parseLine(lines[1]!)?.hash).toBe(hash);
    expect(seq).toBe(2);
    const checker = new ChainChecker();
    for (const [i, line] of lines.entries()) checker.feed(line, i + 1);
    expect(checker.problems).toEqual([]);
    // and a line changed after sealing is caught, so the check above can fail
    const edited = new ChainChecker();
    edited.feed(lines[0]!.replace('api.example.test', 'api.example.tesT'), 1);
    expect(edited.problems).not.toEqual([]);
  });

  it('an empty batch writes nothing and leaves the head', () => {
    expect(sealBatch([], 7, 'abc')).toEqual({ bytes: Buffer.alloc(0), seq: 7, hash: 'abc' });
  });
});
