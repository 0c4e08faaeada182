// Request smuggling cases: CL/TE conflicts and their variants, obs-fold, bare CR and LF, NUL,
// oversize and odd chunk sizes, and pipelining. Each is a template ({PREFIX}, {HOST}, {ID}) run on
// both client legs. A case passes when keyway refuses it with 400 and nothing reaches the upstream,
// or re-frames it so exactly `up` requests reach the upstream (one unless pipelined), none of them
// the smuggled one, each with a body length the case allows.

export interface SmugglingCase {
  name: string;
  family: 'CL/TE' | 'obs-fold' | 'bare CR/LF' | 'NUL' | 'chunk size' | 'pipelining';
  text: string;
  /** Requests that may go up when keyway does not refuse (default 1). */
  up?: number;
  /** Allowed body lengths of what goes up, in order; unset: any. */
  bodies?: number[];
  /** RFC 9112 says this must be refused (400): going up at all is a failure. */
  refuseOnly?: boolean;
  /** The body never ends: keyway may also just wait for it, with nothing sent upstream. */
  endless?: boolean;
  /**
   * The fault is in the body, after keyway began streaming it: the upstream may have the head and
   * part of the body when the 400 comes, then a closed connection, never a complete request.
   */
  midBody?: boolean;
}

const P = '{PREFIX}/fz/{ID}';
const H = 'Host: {HOST}\r\n';
export const SMUGGLED = 'GET {PREFIX}/fz/{ID}/smuggled HTTP/1.1\r\nHost: {HOST}\r\n\r\n';
const post = (headers: string, body: string) => `POST ${P}/ HTTP/1.1\r\n${H}${headers}\r\n${body}`;
const chunked = (headers: string, body: string) => post(`Transfer-Encoding: chunked\r\n${headers}`, body);
const HELLO = '5\r\nhello\r\n0\r\n\r\n';

export const SMUGGLING_CASES: SmugglingCase[] = [
  // CL/TE conflicts and variants
  {
    name: 'CL then TE, smuggled request after the last chunk',
    family: 'CL/TE',
    text: post('Content-Length: 6\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${SMUGGLED}`),
    bodies: [0],
  },
  {
    name: 'TE then CL, CL covering only the last chunk',
    family: 'CL/TE',
    text: post('Transfer-Encoding: chunked\r\nContent-Length: 3\r\n', `0\r\n\r\n${SMUGGLED}`),
    bodies: [0],
  },
  {
    name: 'TE chunked with CL 0 and a chunk hiding a request',
    family: 'CL/TE',
    text: post('Transfer-Encoding: chunked\r\nContent-Length: 0\r\n', `${(SMUGGLED.length).toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`),
  },
  { name: 'two different Content-Length', family: 'CL/TE', text: post('Content-Length: 5\r\nContent-Length: 6\r\n', 'hello!'), refuseOnly: true },
  { name: 'two equal Content-Length', family: 'CL/TE', text: post('Content-Length: 5\r\nContent-Length: 5\r\n', 'hello'), bodies: [5] },
  { name: 'Content-Length list "5, 6"', family: 'CL/TE', text: post('Content-Length: 5, 6\r\n', 'hello!'), refuseOnly: true },
  { name: 'Content-Length list "5, 5"', family: 'CL/TE', text: post('Content-Length: 5, 5\r\n', 'hello'), bodies: [5] },
  { name: 'Content-Length +5', family: 'CL/TE', text: post('Content-Length: +5\r\n', 'hello'), bodies: [5] },
  { name: 'Content-Length -1', family: 'CL/TE', text: post('Content-Length: -1\r\n', 'hello'), refuseOnly: true },
  { name: 'Content-Length 0x5', family: 'CL/TE', text: post('Content-Length: 0x5\r\n', 'hello'), refuseOnly: true },
  { name: 'Content-Length beyond 2^64', family: 'CL/TE', text: post('Content-Length: 99999999999999999999\r\n', 'hello'), refuseOnly: true },
  { name: 'Content-Length "5 5"', family: 'CL/TE', text: post('Content-Length: 5 5\r\n', 'hello'), refuseOnly: true },
  { name: 'Content-Length 5abc', family: 'CL/TE', text: post('Content-Length: 5abc\r\n', 'hello'), refuseOnly: true },
  { name: 'TE "chunked, chunked"', family: 'CL/TE', text: post('Transfer-Encoding: chunked, chunked\r\n', HELLO) },
  { name: 'TE "gzip, chunked"', family: 'CL/TE', text: post('Transfer-Encoding: gzip, chunked\r\n', HELLO) },
  { name: 'TE "chunked, gzip" (chunked not last)', family: 'CL/TE', text: post('Transfer-Encoding: chunked, gzip\r\n', HELLO), refuseOnly: true },
  { name: 'TE identity with CL', family: 'CL/TE', text: post('Transfer-Encoding: identity\r\nContent-Length: 5\r\n', 'hello'), bodies: [5] },
  { name: 'TE with leading spaces', family: 'CL/TE', text: post('Transfer-Encoding:    chunked\r\n', HELLO), bodies: [5] },
  { name: 'TE xchunked with CL', family: 'CL/TE', text: post('Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n', 'hello'), bodies: [5] },
  { name: 'TE with a vertical tab', family: 'CL/TE', text: post('Transfer-Encoding: \x0bchunked\r\nContent-Length: 5\r\n', 'hello'), bodies: [5] },
  { name: 'space before the colon of TE', family: 'CL/TE', text: post('Transfer-Encoding : chunked\r\nContent-Length: 5\r\n', 'hello'), refuseOnly: true },
  { name: 'Transfer_Encoding (underscore) with CL', family: 'CL/TE', text: post('Transfer_Encoding: chunked\r\nContent-Length: 5\r\n', 'hello'), bodies: [5] },
  { name: 'TE split over two lines, gzip then chunked', family: 'CL/TE', text: post('Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n', HELLO) },
  { name: 'TE "Chunked" in another case', family: 'CL/TE', text: post('Transfer-Encoding: Chunked\r\n', HELLO), bodies: [5] },
  // obs-fold
  { name: 'obs-fold on Transfer-Encoding', family: 'obs-fold', text: post('Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n', 'hello'), bodies: [5] },
  { name: 'obs-fold on an ordinary header', family: 'obs-fold', text: `GET ${P}/ HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n`, bodies: [0] },
  { name: 'obs-fold on Content-Length', family: 'obs-fold', text: post('Content-Length:\r\n 5\r\n', 'hello'), bodies: [5] },
  // bare CR / LF
  { name: 'bare LF line endings', family: 'bare CR/LF', text: `GET ${P}/ HTTP/1.1\n${H.replace('\r\n', '\n')}\n`, bodies: [0] },
  {
    name: 'bare LF in a value hiding TE',
    family: 'bare CR/LF',
    text: post('X-A: a\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n', 'hello'),
    bodies: [5],
  },
  {
    name: 'bare CR in a value hiding TE',
    family: 'bare CR/LF',
    text: post('X-A: a\rTransfer-Encoding: chunked\r\nContent-Length: 5\r\n', 'hello'),
    bodies: [5],
  },
  { name: 'CR in the request target', family: 'bare CR/LF', text: `GET ${P}/a\rb HTTP/1.1\r\n${H}\r\n`, refuseOnly: true },
  { name: 'chunk size line ended by a bare LF', family: 'bare CR/LF', text: chunked('', '5\nhello\r\n0\r\n\r\n'), bodies: [5] },
  { name: 'chunk data longer than its size', family: 'bare CR/LF', text: chunked('', `5\r\nhelloXX\r\n0\r\n\r\n`), refuseOnly: true, midBody: true },
  // NUL
  { name: 'NUL in a header value', family: 'NUL', text: `GET ${P}/ HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n`, bodies: [0] },
  { name: 'NUL in a header name', family: 'NUL', text: `GET ${P}/ HTTP/1.1\r\n${H}X-\0A: a\r\n\r\n`, refuseOnly: true },
  { name: 'NUL in the request target', family: 'NUL', text: `GET ${P}/a\0b HTTP/1.1\r\n${H}\r\n`, refuseOnly: true },
  { name: 'NUL in a chunk extension', family: 'NUL', text: chunked('', '5;a=\0\r\nhello\r\n0\r\n\r\n'), bodies: [5] },
  // chunk sizes
  // Valid syntax for a body that never ends: keyway may stream it on, re-chunked in its own sizes.
  { name: 'chunk size 2^64-1', family: 'chunk size', text: chunked('', 'ffffffffffffffff\r\nhello\r\n0\r\n\r\n'), endless: true },
  { name: 'chunk size 2^64 (overflow to 0)', family: 'chunk size', text: chunked('', `10000000000000000\r\n\r\n${SMUGGLED}0\r\n\r\n`), refuseOnly: true },
  { name: 'chunk size with many leading zeros', family: 'chunk size', text: chunked('', '0000000000000000005\r\nhello\r\n0\r\n\r\n'), bodies: [5] },
  { name: 'negative chunk size', family: 'chunk size', text: chunked('', '-5\r\nhello\r\n0\r\n\r\n'), refuseOnly: true },
  { name: 'chunk size 0x5', family: 'chunk size', text: chunked('', '0x5\r\nhello\r\n0\r\n\r\n'), refuseOnly: true },
  { name: 'chunk size with trailing spaces', family: 'chunk size', text: chunked('', '5  \r\nhello\r\n0\r\n\r\n'), bodies: [5] },
  { name: 'chunk extension of 32 KiB', family: 'chunk size', text: chunked('', `5;x=${'a'.repeat(32 * 1024)}\r\nhello\r\n0\r\n\r\n`), bodies: [5] },
  {
    name: 'trailers carrying CL and TE',
    family: 'chunk size',
    text: chunked('', '5\r\nhello\r\n0\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n'),
    bodies: [5],
  },
  // pipelining
  { name: 'two GETs pipelined', family: 'pipelining', text: `GET ${P}/ HTTP/1.1\r\n${H}\r\nGET ${P}/second HTTP/1.1\r\n${H}\r\n`, up: 2, bodies: [0, 0] },
  {
    name: 'POST with CL, then GET',
    family: 'pipelining',
    text: `${post('Content-Length: 5\r\n', 'hello')}GET ${P}/second HTTP/1.1\r\n${H}\r\n`,
    up: 2,
    bodies: [5, 0],
  },
  { name: 'chunked POST, then GET', family: 'pipelining', text: `${chunked('', HELLO)}GET ${P}/second HTTP/1.1\r\n${H}\r\n`, up: 2, bodies: [5, 0] },
  { name: 'GET whose CL body is a request', family: 'pipelining', text: `GET ${P}/ HTTP/1.1\r\n${H}Content-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}` },
  { name: 'HEAD whose CL body is a request', family: 'pipelining', text: `HEAD ${P}/ HTTP/1.1\r\n${H}Content-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}` },
  {
    name: 'Connection: close, then a pipelined request',
    family: 'pipelining',
    text: `GET ${P}/ HTTP/1.1\r\n${H}Connection: close\r\n\r\n${SMUGGLED}`,
    bodies: [0],
  },
  { name: 'HTTP/1.0, then a pipelined request', family: 'pipelining', text: `GET ${P}/ HTTP/1.0\r\n${H}\r\n${SMUGGLED}`, bodies: [0] },
  {
    name: 'Expect: 100-continue with a body, then GET',
    family: 'pipelining',
    text: `${post('Expect: 100-continue\r\nContent-Length: 5\r\n', 'hello')}GET ${P}/second HTTP/1.1\r\n${H}\r\n`,
    up: 2,
    bodies: [5, 0],
  },
  {
    name: 'absolute-form target naming another host inside the connection',
    family: 'pipelining',
    text: `GET http://other.example.test/fz/{ID}/ HTTP/1.1\r\n${H}\r\n`,
    bodies: [0],
  },
];
