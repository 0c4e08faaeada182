// fast-check arbitraries for HTTP/1.1 requests as an agent could write them: request line, headers
// and body framing, mostly well-formed with a twist now and then (the twists are the hostile part:
// CL/TE conflicts, odd line ends, NUL, obs-fold, bad chunk sizes, pipelined extras). A generated
// request is a template: {HOST} and {ID} are filled per case and per leg when it is serialised.

import fc from 'fast-check';

export interface RequestSpec {
  method: string;
  /** Path after /fz/{ID}/ ; query and odd characters included. */
  path: string;
  version: string;
  headers: Array<{ name: string; sep: string; value: string; eol: string }>;
  host: 'right' | 'none' | 'twice' | 'wrong' | 'upper' | 'folded';
  body: BodySpec;
  lineEnd: string;
}

export type BodySpec =
  | { kind: 'none' }
  | { kind: 'length'; data: string; declared: string; extra: string }
  | { kind: 'chunked'; te: string; chunks: Array<{ data: string; size: string; ext: string }>; last: string; trailers: string; alsoLength: string | null };

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'get', 'PROPFIND', 'G ET', 'GET\0', 'CONNECT', 'X-\u00ff', ''];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.0', 'HTTP/1.1', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/1', 'http/1.1', 'HTTP/1.1 ', 'HTTP/01.1'];
const ODD = ['\0', '\r', '\n', '\t', '\x0b', '\x7f', '\u00ff', ' ', '"', '<', '%00', '%0d%0a', '%2f', '%252f', ';x=1', '#frag', '..', '//', '\\'];
const EOLS = ['\r\n', '\r\n', '\r\n', '\r\n', '\r\n', '\r\n', '\n', '\r', '\r\r\n', '\n\r'];
const SEPS = [': ', ': ', ':', ':\t', ' : ', ' :', ':  '];

const weighted = <T>(common: T, rare: fc.Arbitrary<T>, rareWeight = 1, commonWeight = 9) =>
  fc.oneof({ arbitrary: fc.constant(common), weight: commonWeight }, { arbitrary: rare, weight: rareWeight });

// fc.string over a small alphabet: fc.stringMatching is far slower, and generation must keep up
// with a thousand cases a second.
const chars = (alphabet: string, maxLength: number, minLength = 0) => fc.string({ unit: fc.constantFrom(...alphabet), minLength, maxLength });
const LOWER = 'abcdefghijklmnopqrstuvwxyz0123456789';
const VISIBLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');

const pathArb = fc
  .tuple(
    fc.array(fc.oneof({ arbitrary: chars(`${LOWER}._~-`, 8), weight: 20 }, { arbitrary: fc.constantFrom(...ODD), weight: 1 }), { maxLength: 4 }),
    weighted(
      '',
      chars(`${LOWER}%&=`, 12).map((q) => `?q=${q}`),
      1,
      2,
    ),
  )
  .map(([segments, query]) => `${segments.join('/')}${query}`);

const tokenArb = chars(`${LOWER}ABCXYZ-`, 14, 1).map((t) => `X${t}`);

const CL_VALUES = [
  '{LEN}',
  '{LEN}',
  '{LEN}',
  ' {LEN}',
  '{LEN} ',
  '+{LEN}',
  '-1',
  '0x{LEN}',
  '0{LEN}',
  '{LEN}, {LEN}',
  '{LEN},{LEN}',
  '99999999999999999999',
  '{LEN}\0',
  '1e3',
  '',
];
const TE_VALUES = [
  'chunked',
  'chunked',
  'chunked',
  'Chunked',
  'CHUNKED',
  ' chunked',
  'chunked ',
  'gzip, chunked',
  'chunked, identity',
  'identity',
  'chunked;q=1',
  'x-chunked',
  'chunked\x0b',
  '"chunked"',
  'chunked, chunked',
];
const SIZES = [
  '{SIZE}',
  '{SIZE}',
  '{SIZE}',
  '{SIZE}',
  '0{SIZE}',
  '{SIZE} ',
  '-{SIZE}',
  '0x{SIZE}',
  'ffffffffffffffffff',
  '10000000000000001',
  '{SIZE}\0',
  '{SIZE};ext="a\rb"',
  '',
];

const headerArb = fc.record({
  name: fc.oneof(
    {
      arbitrary: fc.constantFrom(
        'Accept',
        'User-Agent',
        'X-Test',
        'Authorization',
        'Cookie',
        'Connection',
        'Upgrade',
        'Expect',
        'X-Keyway-Grant',
        'X-HTTP-Method-Override',
        'Proxy-Authorization',
        'Keep-Alive',
        'TE',
        'Trailer',
        'Content-Type',
        'Accept-Encoding',
      ),
      weight: 12,
    },
    { arbitrary: tokenArb, weight: 3 },
    { arbitrary: fc.constantFrom('Bad Name', 'Bad\0Name', '', 'X-\u00ff', 'Transfer-Encoding ', ' Host', 'Content-Length\t'), weight: 1 },
  ),
  sep: weighted(': ', fc.constantFrom(...SEPS), 1, 6),
  value: fc.oneof(
    { arbitrary: chars(VISIBLE, 24), weight: 20 },
    {
      arbitrary: fc.constantFrom(
        'close',
        'keep-alive',
        'Upgrade',
        'websocket',
        '100-continue',
        'content-length',
        'host',
        'transfer-encoding',
        'x-test, authorization',
        'trailers',
        'api',
        'nope',
      ),
      weight: 3,
    },
    { arbitrary: fc.constantFrom('a\0b', 'a\rb', 'a\nb', 'a\x7fb', '\u00ff\u00fe', 'x'.repeat(9000)), weight: 1 },
  ),
  eol: weighted('\r\n', fc.constantFrom(...EOLS), 1, 40),
});

const lengthBody = fc.record({
  kind: fc.constant('length' as const),
  data: chars(VISIBLE, 40),
  declared: weighted('{LEN}', fc.constantFrom(...CL_VALUES), 1, 4),
  extra: weighted('', fc.constantFrom('X', '\r\n', 'GET /fz/{ID}/smuggled HTTP/1.1\r\nHost: {HOST}\r\n\r\n')),
});

const chunkedBody = fc.record({
  kind: fc.constant('chunked' as const),
  te: weighted('chunked', fc.constantFrom(...TE_VALUES), 1, 4),
  chunks: fc.array(
    fc.record({
      data: chars(VISIBLE, 20, 1),
      size: weighted('{SIZE}', fc.constantFrom(...SIZES), 1, 12),
      ext: weighted('', fc.constantFrom(';a=b', ';a', '; a=b', ';\0')),
    }),
    { maxLength: 4 },
  ),
  last: weighted('0\r\n', fc.constantFrom('0;ext\r\n', '00\r\n', '0\n', '000000000000000000\r\n', '0 \r\n', '')),
  trailers: weighted('\r\n', fc.constantFrom('X-T: 1\r\n\r\n', 'Content-Length: 5\r\n\r\n', 'X-T:\0\r\n\r\n', '', '\n')),
  alsoLength: weighted(null, fc.constantFrom('5', '0', '{LEN}', '100'), 1, 6),
});

export const requestSpecArb: fc.Arbitrary<RequestSpec> = fc.record({
  method: fc.oneof(
    { arbitrary: fc.constantFrom('GET', 'GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'PATCH'), weight: 12 },
    { arbitrary: fc.constantFrom(...METHODS), weight: 1 },
  ),
  path: pathArb,
  version: weighted('HTTP/1.1', fc.constantFrom(...VERSIONS), 1, 12),
  headers: fc.array(headerArb, { maxLength: 4 }),
  host: weighted('right' as const, fc.constantFrom('none' as const, 'twice' as const, 'wrong' as const, 'upper' as const, 'folded' as const), 1, 12),
  body: fc.oneof({ arbitrary: fc.constant({ kind: 'none' as const }), weight: 4 }, { arbitrary: lengthBody, weight: 3 }, { arbitrary: chunkedBody, weight: 3 }),
  lineEnd: weighted('\r\n', fc.constantFrom(...EOLS), 1, 40),
});

/** One to three requests on one connection (pipelining), mostly one. */
export const pipelineArb = fc.oneof(
  { arbitrary: fc.array(requestSpecArb, { minLength: 1, maxLength: 1 }), weight: 6 },
  { arbitrary: fc.array(requestSpecArb, { minLength: 2, maxLength: 3 }), weight: 1 },
);

export interface Fill {
  /** Request target prefix: '' for origin-form, 'http://host:port' for absolute-form. */
  prefix: string;
  host: string;
  id: string;
}

export function serialise(spec: RequestSpec, fill: Fill, index: number): string {
  const id = `${fill.id}${index > 0 ? `p${index}` : ''}`;
  const sub = (text: string) => text.replaceAll('{ID}', id).replaceAll('{HOST}', fill.host);
  const eol = spec.lineEnd;
  const lines: string[] = [`${spec.method} ${fill.prefix}/fz/${id}/${spec.path} ${spec.version}`];
  const hostLine = {
    right: `Host: ${fill.host}`,
    none: null,
    twice: `Host: ${fill.host}${eol}Host: ${fill.host}`,
    wrong: 'Host: other.example.test',
    upper: `Host: ${fill.host.toUpperCase()}`,
    folded: `Host:${eol} ${fill.host}`,
  }[spec.host];
  if (hostLine !== null) lines.push(hostLine);
  const headerText = spec.headers.map((h) => `${h.name}${h.sep}${sub(h.value)}${h.eol}`).join('');
  let body = '';
  const b = spec.body;
  if (b.kind === 'length') {
    lines.push(`Content-Length: ${b.declared.replaceAll('{LEN}', String(Buffer.byteLength(b.data, 'latin1')))}`);
    body = b.data + sub(b.extra);
  } else if (b.kind === 'chunked') {
    lines.push(`Transfer-Encoding: ${b.te}`);
    const chunks = b.chunks.map((c) => `${c.size.replaceAll('{SIZE}', Buffer.byteLength(c.data, 'latin1').toString(16))}${c.ext}\r\n${c.data}\r\n`).join('');
    body = `${chunks}${b.last}${b.trailers}`;
    if (b.alsoLength !== null) lines.push(`Content-Length: ${b.alsoLength.replaceAll('{LEN}', String(Buffer.byteLength(body, 'latin1')))}`);
  }
  return `${lines.join(eol)}${eol}${headerText}${eol}${body}`;
}
