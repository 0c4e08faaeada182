// fast-check arbitraries for what an upstream could answer: status lines, 1xx runs, headers (CL/TE
// conflicts, duplicates, NUL, obs-fold, odd line ends) and body framing (exact, short and long
// Content-Length, chunked with good and bad sizes, close-delimited), mostly valid with twists.

import fc from 'fast-check';

const chars = (alphabet: string, maxLength: number, minLength = 0) => fc.string({ unit: fc.constantFrom(...alphabet), minLength, maxLength });
const VISIBLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');
const weighted = <T>(common: T, rare: fc.Arbitrary<T>, rareWeight = 1, commonWeight = 6) =>
  fc.oneof({ arbitrary: fc.constant(common), weight: commonWeight }, { arbitrary: rare, weight: rareWeight });

const STATUS_LINES = [
  'HTTP/1.1 201 Created',
  'HTTP/1.1 204 No Content',
  'HTTP/1.0 200 OK',
  'HTTP/1.1 404 Not Found',
  'HTTP/1.1 500 Oops',
  'HTTP/1.1 304 Not Modified',
  'HTTP/1.1 200',
  'HTTP/1.1 2OO OK',
  'HTTP/2.0 200 OK',
  'HTTP/1.1 99 Low',
  'HTTP/1.1 1000 High',
  'HTTP/1.1  200 OK',
  'http/1.1 200 OK',
  'HTTP/1.1 200 OK\0',
  'HTTP/1.1 101 Switching Protocols',
  'HTTP/1.1 200 \u00ff',
  'HTTP/1.1 -200 OK',
  '',
  'HTTP/1.1 200 OK\r',
];
const INTERIM = ['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n', 'HTTP/1.1 102 Processing\r\n\r\n'];
const NAMES = [
  'Content-Type',
  'Set-Cookie',
  'X-A',
  'Connection',
  'Keep-Alive',
  'Transfer-Encoding',
  'Content-Length',
  'Trailer',
  'Upgrade',
  'Location',
  'Content-Encoding',
  'WWW-Authenticate',
  'Proxy-Authenticate',
];
const ODD_NAMES = ['Bad Name', 'X-\0', '', 'Content-Length ', ' X-A', 'X:A', '\u00ff'];
const VALUES = [
  'close',
  'keep-alive',
  'chunked',
  'gzip',
  'text/plain',
  'application/json',
  '0',
  '5',
  '-1',
  '99999999999999999999',
  'chunked, chunked',
  'a\0b',
  'a\rb',
  'x'.repeat(9000),
];
const CL_FORMS = ['{LEN}', '{LEN}', '{LEN}', '{MORE}', '{LESS}', '+{LEN}', '{LEN}, {LEN}', '{LEN}, {MORE}', '0x{LEN}', '-{LEN}', ''];
const SIZES = ['{SIZE}', '{SIZE}', '{SIZE}', '{SIZE}', '0{SIZE}', '-{SIZE}', 'ffffffffffffffffff', '{SIZE};ext', '{SIZE} ', 'g'];

export interface ResponseSpec {
  interim: string[];
  status: string;
  headers: Array<{ name: string; sep: string; value: string; eol: string }>;
  body:
    | { kind: 'none' }
    | { kind: 'length'; data: string; declared: string; twice: boolean }
    | { kind: 'chunked'; te: string; chunks: Array<{ data: string; size: string }>; end: string; alsoLength: boolean }
    | { kind: 'close'; data: string };
  lineEnd: string;
}

export const responseSpecArb: fc.Arbitrary<ResponseSpec> = fc.record({
  interim: weighted([] as string[], fc.array(fc.constantFrom(...INTERIM), { minLength: 1, maxLength: 60 }), 1, 8),
  status: weighted('HTTP/1.1 200 OK', fc.constantFrom(...STATUS_LINES), 2, 5),
  headers: fc.array(
    fc.record({
      name: fc.oneof({ arbitrary: fc.constantFrom(...NAMES), weight: 12 }, { arbitrary: fc.constantFrom(...ODD_NAMES), weight: 1 }),
      sep: weighted(': ', fc.constantFrom(':', ' : ', ':\t', ' :'), 1, 12),
      value: fc.oneof({ arbitrary: chars(VISIBLE, 20), weight: 6 }, { arbitrary: fc.constantFrom(...VALUES), weight: 2 }),
      eol: weighted('\r\n', fc.constantFrom('\n', '\r', '\r\n '), 1, 30),
    }),
    { maxLength: 4 },
  ),
  body: fc.oneof(
    { arbitrary: fc.constant({ kind: 'none' as const }), weight: 1 },
    {
      arbitrary: fc.record({
        kind: fc.constant('length' as const),
        data: chars(VISIBLE, 60),
        declared: fc.constantFrom(...CL_FORMS),
        twice: weighted(false, fc.constant(true), 1, 12),
      }),
      weight: 4,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('chunked' as const),
        te: weighted('chunked', fc.constantFrom('Chunked', 'gzip, chunked', 'chunked, gzip', 'identity', ' chunked'), 1, 6),
        chunks: fc.array(fc.record({ data: chars(VISIBLE, 20, 1), size: fc.constantFrom(...SIZES) }), { maxLength: 4 }),
        end: weighted('0\r\n\r\n', fc.constantFrom('0\r\nX-T: 1\r\n\r\n', '0\r\n', '', '0\n\n', '00000000000000000000\r\n\r\n')),
        alsoLength: weighted(false, fc.constant(true), 1, 10),
      }),
      weight: 3,
    },
    { arbitrary: fc.record({ kind: fc.constant('close' as const), data: chars(VISIBLE, 40) }), weight: 1 },
  ),
  lineEnd: weighted('\r\n', fc.constantFrom('\n', '\r\r\n'), 1, 30),
});

export function serialiseResponse(spec: ResponseSpec): string {
  const eol = spec.lineEnd;
  const lines = [spec.status];
  let body = '';
  const b = spec.body;
  if (b.kind === 'length') {
    const len = b.data.length;
    const cl = b.declared
      .replaceAll('{LEN}', String(len))
      .replaceAll('{MORE}', String(len + 7))
      .replaceAll('{LESS}', String(Math.max(0, len - 3)));
    lines.push(`Content-Length: ${cl}`);
    if (b.twice) lines.push(`Content-Length: ${cl}`);
    body = b.data;
  } else if (b.kind === 'chunked') {
    lines.push(`Transfer-Encoding: ${b.te}`);
    body = b.chunks.map((c) => `${c.size.replaceAll('{SIZE}', c.data.length.toString(16))}\r\n${c.data}\r\n`).join('') + b.end;
    if (b.alsoLength) lines.push(`Content-Length: ${body.length}`);
  } else if (b.kind === 'close') {
    body = b.data;
  }
  const headers = spec.headers.map((h) => `${h.name}${h.sep}${h.value}${h.eol}`).join('');
  return `${spec.interim.join('')}${lines.join(eol)}${eol}${headers}${eol}${body}`;
}
