// Mutation of recorded valid traffic: a corpus template (what curl, undici or Python sent through a
// proxy, with {PREFIX}, {HOST} and {ID} in place of the address and path) gets a few byte-level
// edits chosen by fast-check, so a seed reproduces a case exactly.

import fc from 'fast-check';

export interface CorpusEntry {
  name: string;
  /** Which client sent it, or which suite found it. */
  source: string;
  /** The request(s) as latin1 text with {PREFIX}, {HOST} and {ID} placeholders. */
  text: string;
}

// Tokens that matter to a framer, spliced in at random places.
const DICTIONARY = [
  '\r\n',
  '\n',
  '\r',
  '\0',
  ' ',
  '\t',
  ':',
  ',',
  ';',
  '\r\n ',
  '\r\n\r\n',
  '0\r\n\r\n',
  'chunked',
  'Transfer-Encoding: chunked\r\n',
  'Content-Length: 0\r\n',
  'Content-Length: 5\r\n',
  'Content-Length: -1\r\n',
  'Transfer-Encoding: identity\r\n',
  'Connection: close\r\n',
  'Connection: Upgrade\r\nUpgrade: websocket\r\n',
  'Expect: 100-continue\r\n',
  'Host: other.example.test\r\n',
  'Host: {HOST}\r\n',
  'ffffffffffffffff',
  '-1',
  '99999999999999999999',
  '\u00ff',
  'GET {PREFIX}/fz/{ID}/smuggled HTTP/1.1\r\nHost: {HOST}\r\n\r\n',
  'HTTP/1.0',
  'HTTP/2.0',
  '%00',
  '%2f',
  '/../',
];

export type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'insert'; at: number; token: number }
  | { op: 'delete'; at: number; length: number }
  | { op: 'duplicate'; at: number; length: number }
  | { op: 'byte'; at: number; value: number }
  | { op: 'truncate'; at: number };

// Positions are fractions of the text's length, so one mutation list fits any template.
const at = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('flip' as const), at, bit: fc.integer({ min: 0, max: 7 }) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('insert' as const), at, token: fc.integer({ min: 0, max: DICTIONARY.length - 1 }) }), weight: 5 },
  { arbitrary: fc.record({ op: fc.constant('delete' as const), at, length: fc.integer({ min: 1, max: 8 }) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('duplicate' as const), at, length: fc.integer({ min: 1, max: 40 }) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('byte' as const), at, value: fc.constantFrom(0, 9, 10, 13, 32, 44, 58, 59, 127, 255) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('truncate' as const), at }), weight: 1 },
);

export const mutationsArb = fc.array(mutationArb, { minLength: 1, maxLength: 4 });

/** Applies edits to a template (placeholders inserted by the dictionary are filled later). */
export function mutate(text: string, mutations: readonly Mutation[]): string {
  let out = text;
  for (const m of mutations) {
    const pos = Math.floor(m.at * out.length);
    switch (m.op) {
      case 'flip':
        out = out.slice(0, pos) + String.fromCharCode((out.charCodeAt(pos) ^ (1 << m.bit)) & 0xff) + out.slice(pos + 1);
        break;
      case 'insert':
        out = out.slice(0, pos) + DICTIONARY[m.token]! + out.slice(pos);
        break;
      case 'delete':
        out = out.slice(0, pos) + out.slice(pos + m.length);
        break;
      case 'duplicate':
        out = out.slice(0, pos + m.length) + out.slice(pos);
        break;
      case 'byte':
        out = out.slice(0, pos) + String.fromCharCode(m.value) + out.slice(pos + 1);
        break;
      case 'truncate':
        out = out.slice(0, Math.max(1, pos));
        break;
    }
  }
  return out;
}

export function fillTemplate(text: string, fill: { prefix: string; host: string; id: string }): string {
  return text.replaceAll('{PREFIX}', fill.prefix).replaceAll('{HOST}', fill.host).replaceAll('{ID}', fill.id);
}
