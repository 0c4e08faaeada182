import { Readable } from 'node:stream';
import { type ClientRequest, isHttp2Request } from './client-message.ts';

/** Bodies up to this size are kept so a request can be replayed once after a refresh. */
export const REPLAY_LIMIT = 1024 * 1024;

export type RequestBody =
  | { kind: 'none' }
  /** Whole body in memory: can be sent twice. */
  | { kind: 'kept'; body: Buffer }
  /** Streamed once, never replayed: larger than the limit ('size'), or no memory left to keep it ('budget'). */
  | { kind: 'streamed'; stream: Readable; why: 'size' | 'budget' };

/** Where the bytes kept for a replay are counted (agent-load.ts); `hold` says no past a budget. */
export interface ReplayHolder {
  hold(bytes: number): boolean;
}

export function hasBody(req: ClientRequest): boolean {
  const length = req.headers['content-length'];
  // HTTP/2 has no Transfer-Encoding: a body of undeclared size is one whose HEADERS did not end the stream.
  if (isHttp2Request(req)) return length !== '0' && !req.stream.endAfterHeaders;
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Reads a request body (from `source`: the request, or a stage in front of it) for a grant whose
 * requests may be replayed (or a stage that rewrites it): up to `limit` bytes are kept, each byte first reserved with
 * `holder`. Past the limit, or when the holder refuses, what was read is sent first and the rest
 * streams on without being kept (what was reserved stays reserved until the caller releases it).
 */
export async function readForReplay(req: ClientRequest, holder: ReplayHolder, source: Readable = req, limit = REPLAY_LIMIT): Promise<RequestBody> {
  if (!hasBody(req)) return { kind: 'none' };
  const declared = Number(req.headers['content-length']);
  const sized = Number.isFinite(declared);
  if (sized && declared > limit) return { kind: 'streamed', stream: source, why: 'size' };
  // A declared size is reserved whole, before a byte is read; an undeclared one (or bytes past the
  // declared size, which an HTTP/2 client could send) as they come.
  let reserved = 0;
  if (sized) {
    if (!holder.hold(declared)) return { kind: 'streamed', stream: source, why: 'budget' };
    reserved = declared;
  }
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await iterator.next();
    if (done) return { kind: 'kept', body: Buffer.concat(chunks, size) };
    chunks.push(value);
    size += value.length;
    let why: 'size' | 'budget' | undefined;
    if (size > limit) why = 'size';
    else if (size > reserved) {
      if (holder.hold(size - reserved)) reserved = size;
      else why = 'budget';
    }
    if (why) return { kind: 'streamed', stream: Readable.from(continueAfter(chunks, iterator), { objectMode: false }), why };
  }
}

async function* continueAfter(prefix: Buffer[], iterator: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield* prefix;
  for (;;) {
    const { value, done } = await iterator.next();
    if (done) return;
    yield value;
  }
}
