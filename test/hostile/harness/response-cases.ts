// Malformed upstream responses. Those broken in the head must be answered 502 by keyway (its own
// JSON error, never the bytes relayed); those broken only in the body may instead be cut off (the
// head already went to the client), but never passed on as if whole.

export interface ResponseCase {
  name: string;
  bytes: string;
  /**
   * 'head': must be a 502 from keyway. 'body': a 502, or an answer cut short. 'lenient': a 502, or
   * keyway's own well-formed answer carrying exactly the declared body (undici accepts it).
   */
  broken: 'head' | 'body' | 'lenient';
}

const OK = 'HTTP/1.1 200 OK\r\n';

export const RESPONSE_CASES: ResponseCase[] = [
  { name: 'status code with letters', bytes: 'HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok', broken: 'head' },
  { name: 'unknown protocol name', bytes: 'HTTX/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', broken: 'head' },
  { name: 'HTTP/2.0 status line on HTTP/1.1', bytes: 'HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok', broken: 'lenient' },
  { name: 'no status line at all', bytes: 'Content-Length: 2\r\n\r\nok', broken: 'head' },
  { name: 'Content-Length with Transfer-Encoding', bytes: `${OK}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, broken: 'head' },
  { name: 'two different Content-Length', bytes: `${OK}Content-Length: 2\r\nContent-Length: 3\r\n\r\nok!`, broken: 'head' },
  { name: 'negative Content-Length', bytes: `${OK}Content-Length: -2\r\n\r\nok`, broken: 'head' },
  { name: 'Content-Length not a number', bytes: `${OK}Content-Length: two\r\n\r\nok`, broken: 'head' },
  { name: 'NUL in a header value', bytes: `${OK}X-A: a\0b\r\nContent-Length: 2\r\n\r\nok`, broken: 'head' },
  { name: 'obs-fold in a header', bytes: `${OK}X-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok`, broken: 'head' },
  { name: 'bare LF line endings', bytes: 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok', broken: 'head' },
  { name: 'space before a colon', bytes: `${OK}Content-Length : 2\r\n\r\nok`, broken: 'head' },
  { name: 'space in a header name', bytes: `${OK}Bad Header: x\r\nContent-Length: 2\r\n\r\nok`, broken: 'head' },
  { name: 'bare CR in a header value', bytes: `${OK}X-A: a\rb\r\nContent-Length: 2\r\n\r\nok`, broken: 'head' },
  {
    name: '1xx flood, then a broken final head',
    bytes: `${'HTTP/1.1 100 Continue\r\n\r\n'.repeat(200)}HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!`,
    broken: 'head',
  },
  {
    name: '101 Switching Protocols to a plain request',
    bytes: 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: evil\r\n\r\nraw bytes',
    broken: 'head',
  },
  { name: 'chunk size beyond 2^64', bytes: `${OK}Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\nok\r\n0\r\n\r\n`, broken: 'body' },
  { name: 'negative chunk size', bytes: `${OK}Transfer-Encoding: chunked\r\n\r\n-2\r\nok\r\n0\r\n\r\n`, broken: 'body' },
  { name: 'chunk data without its CRLF', bytes: `${OK}Transfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n`, broken: 'body' },
  { name: 'body shorter than Content-Length, then close', bytes: `${OK}Content-Length: 100\r\n\r\nonly ten b`, broken: 'body' },
  { name: 'chunked body cut before the last chunk', bytes: `${OK}Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n`, broken: 'body' },
];

/** A complete response followed by a second one nobody asked for, on a connection kept open. */
export const SMUGGLED_RESPONSE = `${OK}Content-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 15\r\nX-Smuggled: 1\r\n\r\nsmuggled answer`;
