// fast-check arbitraries for upstream answers that echo the injected secret (the stand's grants
// hold CANARY) in the forms the leak guard must catch: as sent, hex, base64 (on its own, inside a
// larger blob, wrapped in lines as MIME, PEM and GitHub's contents API wrap it), every byte
// percent-encoded, every character \u-escaped; whole in the body, or cut at its start or end (a
// Range window, a truncated echo); in a header value or name. Framed with a Content-Length or
// chunked at random points, typed as text, binary or not at all. The forms are written here from
// test/helpers/leak-canary.ts, apart from the guard's own list.

import fc from 'fast-check';
import { CANARY } from '../../helpers/fixtures.ts';
import { canaryForms } from '../../helpers/leak-canary.ts';

const chars = (alphabet: string, maxLength: number) => fc.string({ unit: fc.constantFrom(...alphabet), maxLength });
/** Filler around the planted forms: text and the bytes of base64 (so forms touch look-alike neighbours). */
const FILLER = ' abcdefxyzABCXYZ0123456789+/={}":,\n';

const plain = Object.entries(canaryForms(CANARY))
  .filter(([name]) => !name.includes('half'))
  .map(([, form]) => form);

/** A base64 form, or the secret inside a larger JSON blob wrapped whole, wrapped in lines. */
const wrappedArb = fc
  .tuple(fc.nat(80), fc.constantFrom([76, '\r\n'] as const, [64, '\n'] as const, [60, '\n'] as const), fc.boolean())
  .map(([pad, [width, eol], url]) => {
    const blob = Buffer.from(`${'p'.repeat(pad)}{"authorization":"Bearer ${CANARY}"}`).toString(url ? 'base64url' : 'base64');
    return blob.replace(new RegExp(`.{${width}}(?=.)`, 'g'), `$&${eol}`);
  });

const formArb = fc.oneof(fc.constantFrom(...plain), wrappedArb);

/** What a slice at an edge is cut from: a form, or the secret's base64 broken by one line break. */
const b64 = Buffer.from(CANARY).toString('base64');
const sliceFormArb = fc.oneof(
  fc.constantFrom(...plain),
  fc
    .tuple(fc.nat(), fc.constantFrom('\n', '\r\n'))
    .map(([at, eol]) => `${b64.slice(0, 1 + (at % (b64.length - 1)))}${eol}${b64.slice(1 + (at % (b64.length - 1)))}`),
);

export interface LeakResponse {
  bytes: string;
  /** What the body began and ended with, cut from a form (6 characters of it or more), if anything. */
  startSlice: string | undefined;
  endSlice: string | undefined;
}

export const leakResponseArb: fc.Arbitrary<LeakResponse> = fc
  .record({
    type: fc.constantFrom('application/json', 'text/plain; charset=utf-8', 'application/octet-stream', ''),
    parts: fc.array(fc.oneof(chars(FILLER, 30), formArb), { maxLength: 6 }),
    startSlice: fc.option(fc.tuple(sliceFormArb, fc.nat()), { nil: undefined }),
    endSlice: fc.option(fc.tuple(sliceFormArb, fc.nat()), { nil: undefined }),
    chunked: fc.boolean(),
    cuts: fc.array(fc.nat(), { maxLength: 6 }),
    header: fc.option(fc.tuple(fc.constantFrom(...plain.filter((f) => /^[\x21-\x7e]+$/.test(f))), fc.boolean()), { nil: undefined }),
  })
  .map((spec) => {
    // A slice of 6 to (length - 1) characters: the form's end at the start, its start at the end.
    const cutEnd = (cut: [string, number] | undefined) => (cut ? cut[0].slice(1 + (cut[1] % (cut[0].length - 6))) : undefined);
    const cutStart = (cut: [string, number] | undefined) => (cut ? cut[0].slice(0, 6 + (cut[1] % (cut[0].length - 6))) : undefined);
    const startSlice = cutEnd(spec.startSlice);
    const endSlice = cutStart(spec.endSlice);
    const body = `${startSlice ?? ''}${spec.parts.join('')}${endSlice ?? ''}`;
    // The raw upstream closes after its answer: said, so keyway does not reuse the connection.
    const head = ['HTTP/1.1 200 OK', 'Connection: close'];
    if (spec.type) head.push(`Content-Type: ${spec.type}`);
    if (spec.header) head.push(spec.header[1] ? `X-Echo: token=${spec.header[0]}` : `X-Echo-${CANARY}: 1`);
    let payload = body;
    if (spec.chunked) {
      head.push('Transfer-Encoding: chunked');
      const at = [...new Set(spec.cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
      let from = 0;
      payload = '';
      for (const p of [...at, body.length]) {
        if (p > from) payload += `${(Buffer.byteLength(body.slice(from, p), 'latin1')).toString(16)}\r\n${body.slice(from, p)}\r\n`;
        from = p;
      }
      payload += '0\r\n\r\n';
    } else head.push(`Content-Length: ${Buffer.byteLength(body, 'latin1')}`);
    const unwrapped = (s: string | undefined) => s?.replace(/[\r\n]/g, '');
    // A slice counts from 6 characters of the form, line breaks not counted.
    const counted = (s: string | undefined) => (s !== undefined && unwrapped(s)!.length >= 6 ? s : undefined);
    return { bytes: `${head.join('\r\n')}\r\n\r\n${payload}`, startSlice: counted(startSlice), endSlice: counted(endSlice) };
  });
