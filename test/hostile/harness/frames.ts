// A strict, independent HTTP/1.1 framer for the hostile suites: RFC 9112 as a careful server reads it,
// written apart from Node's llhttp and undici on purpose. The raw upstream frames what keyway sends
// with it, and the client frames keyway's answers with it; a message it calls ambiguous (CL with TE,
// two lengths, obs-fold, bare CR or LF, NUL, a bad chunk size) is a finding, never guessed at.

export interface Frame {
  /** Request: method; response: status code as text. */
  first: string;
  /** Request target, or the reason phrase. */
  second: string;
  version: string;
  headers: Array<[string, string]>;
  body: Buffer;
  /** Where the message started and ended in the buffer it was read from. */
  start: number;
  end: number;
}

export type FrameResult = { kind: 'message'; frame: Frame } | { kind: 'incomplete' } | { kind: 'invalid'; reason: string };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, obs-text, SP and HTAB; nothing else (no CR, LF, NUL, other controls).
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const MAX_HEAD = 64 * 1024;

/** Frames one request starting at `at`. */
export function frameRequest(buf: Buffer, at = 0): FrameResult {
  return frame(buf, at, 'request');
}

/**
 * Frames one response to a request with `method`. `closed` says the peer has closed, which ends a
 * body with no length. 1xx responses come back as messages of their own.
 */
export function frameResponse(buf: Buffer, at: number, method: string, closed: boolean): FrameResult {
  return frame(buf, at, 'response', method, closed);
}

function frame(buf: Buffer, at: number, kind: 'request' | 'response', method = 'GET', closed = false): FrameResult {
  const headEnd = buf.indexOf('\r\n\r\n', at, 'latin1');
  if (headEnd === -1) return buf.length - at > MAX_HEAD ? { kind: 'invalid', reason: 'head too large' } : { kind: 'incomplete' };
  const head = buf.subarray(at, headEnd).toString('latin1');
  if (/[\r\n]/.test(head.replaceAll('\r\n', ''))) return { kind: 'invalid', reason: 'bare CR or LF in the head' };
  const [line = '', ...fieldLines] = head.split('\r\n');
  const parsedLine = kind === 'request' ? requestLine(line) : statusLine(line);
  if (typeof parsedLine === 'string') return { kind: 'invalid', reason: parsedLine };
  const headers: Array<[string, string]> = [];
  for (const fieldLine of fieldLines) {
    if (fieldLine.startsWith(' ') || fieldLine.startsWith('\t')) return { kind: 'invalid', reason: 'obs-fold' };
    const colon = fieldLine.indexOf(':');
    const name = colon > 0 ? fieldLine.slice(0, colon) : '';
    if (!TOKEN.test(name)) return { kind: 'invalid', reason: 'bad header name' };
    const value = fieldLine.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!FIELD_VALUE.test(value)) return { kind: 'invalid', reason: `control character in ${name.toLowerCase()}` };
    headers.push([name.toLowerCase(), value]);
  }
  const all = (name: string) => headers.filter(([n]) => n === name).map(([, v]) => v);
  if (kind === 'request' && all('host').length !== 1 && parsedLine.version === 'HTTP/1.1') return { kind: 'invalid', reason: 'not exactly one Host' };
  const te = all('transfer-encoding');
  const cl = all('content-length');
  if (te.length > 0 && cl.length > 0) return { kind: 'invalid', reason: 'Content-Length with Transfer-Encoding' };
  if (cl.length > 1 && new Set(cl).size > 1) return { kind: 'invalid', reason: 'conflicting Content-Length' };
  if (cl.length > 1) return { kind: 'invalid', reason: 'repeated Content-Length' };
  const bodyStart = headEnd + 4;
  const status = Number(parsedLine.first);
  const noBody =
    kind === 'response' &&
    (method === 'HEAD' || (method === 'CONNECT' && status >= 200 && status < 300) || (status >= 100 && status < 200) || status === 204 || status === 304);
  const done = (body: Buffer, end: number): FrameResult => ({
    kind: 'message',
    frame: { first: parsedLine.first, second: parsedLine.second, version: parsedLine.version, headers, body, start: at, end },
  });
  if (noBody) return done(Buffer.alloc(0), bodyStart);
  if (te.length > 0) {
    const codings = te
      .join(',')
      .split(',')
      .map((c) => c.trim().toLowerCase());
    if (codings.length !== 1 || codings[0] !== 'chunked') return { kind: 'invalid', reason: 'Transfer-Encoding other than chunked' };
    return dechunkAt(buf, bodyStart, (body, end) => done(body, end));
  }
  if (cl.length === 1) {
    if (!/^\d{1,15}$/.test(cl[0]!)) return { kind: 'invalid', reason: 'bad Content-Length' };
    const length = Number(cl[0]);
    if (buf.length - bodyStart < length) return { kind: 'incomplete' };
    return done(buf.subarray(bodyStart, bodyStart + length), bodyStart + length);
  }
  if (kind === 'request') return done(Buffer.alloc(0), bodyStart);
  if (!closed) return { kind: 'incomplete' };
  return done(buf.subarray(bodyStart), buf.length);
}

function requestLine(line: string): { first: string; second: string; version: string } | string {
  const parts = line.split(' ');
  if (parts.length !== 3) return 'request line is not three parts';
  const [method = '', target = '', version = ''] = parts;
  if (!TOKEN.test(method)) return 'bad method';
  if (!/^[\x21-\x7e]+$/.test(target)) return 'bad request target';
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') return 'bad version';
  return { first: method, second: target, version };
}

function statusLine(line: string): { first: string; second: string; version: string } | string {
  const match = /^(HTTP\/1\.[01]) ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/.exec(line);
  if (!match) return 'bad status line';
  return { first: match[2]!, second: match[3] ?? '', version: match[1]! };
}

/** Chunked body at `at`: strict sizes (1-16 hex digits), extensions allowed, trailers checked. */
function dechunkAt(buf: Buffer, at: number, done: (body: Buffer, end: number) => FrameResult): FrameResult {
  const parts: Buffer[] = [];
  let pos = at;
  for (let guard = 0; guard < 1_000_000; guard++) {
    const lineEnd = buf.indexOf('\r\n', pos, 'latin1');
    if (lineEnd === -1) return buf.length - pos > 4096 ? { kind: 'invalid', reason: 'chunk size line too long' } : { kind: 'incomplete' };
    const line = buf.subarray(pos, lineEnd).toString('latin1');
    const match = /^([0-9a-fA-F]{1,16})(;[\t\x20-\x7e]*)?$/.exec(line);
    if (!match) return { kind: 'invalid', reason: 'bad chunk size line' };
    const size = Number.parseInt(match[1]!, 16);
    if (!Number.isSafeInteger(size)) return { kind: 'invalid', reason: 'chunk size overflows' };
    pos = lineEnd + 2;
    if (size === 0) {
      // Trailer fields, then the empty line.
      for (;;) {
        const end = buf.indexOf('\r\n', pos, 'latin1');
        if (end === -1) return { kind: 'incomplete' };
        const trailer = buf.subarray(pos, end).toString('latin1');
        pos = end + 2;
        if (trailer === '') return done(Buffer.concat(parts), pos);
        if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*$/.test(trailer)) return { kind: 'invalid', reason: 'bad trailer' };
      }
    }
    if (buf.length < pos + size + 2) return { kind: 'incomplete' };
    if (buf[pos + size] !== 0x0d || buf[pos + size + 1] !== 0x0a) return { kind: 'invalid', reason: 'chunk data not followed by CRLF' };
    parts.push(buf.subarray(pos, pos + size));
    pos += size + 2;
  }
  return { kind: 'invalid', reason: 'too many chunks' };
}

/** Frames every complete request in `buf`; stops at the first incomplete or invalid one. */
export function frameAllRequests(buf: Buffer): { frames: Frame[]; rest: 'complete' | 'incomplete' | string; restAt: number } {
  const frames: Frame[] = [];
  let at = 0;
  while (at < buf.length) {
    const result = frameRequest(buf, at);
    if (result.kind === 'incomplete') return { frames, rest: 'incomplete', restAt: at };
    if (result.kind === 'invalid') return { frames, rest: result.reason, restAt: at };
    frames.push(result.frame);
    at = result.frame.end;
  }
  return { frames, rest: 'complete', restAt: at };
}

export function header(frame: Frame, name: string): string | undefined {
  return frame.headers.find(([n]) => n === name)?.[1];
}
