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

/**
 * The largest body keyway holds in memory to check a rule's max_body when the size is not declared
 * (chunked). A cap above it would let each request pin that much memory, so such bodies must
 * declare Content-Length instead (checked before anything is read, then streamed).
 */
export const HOLD_LIMIT = 8 * 1024 * 1024;

/** 'full': the holder's budget ran out first (nothing more is read; the caller refuses). */
export type HeldBody = { kind: 'held'; body: Buffer } | { kind: 'over'; seen: number } | { kind: 'full' };

/**
 * Reads a whole request body, keeping at most `cap` bytes. Past the cap it stops keeping, lets the
 * rest drain unread (so the connection can still carry keyway's answer), and reports the bytes seen.
 * Rejects if the client goes away before the body ends.
 */
export function holdBody(req: ClientRequest, cap: number, holder?: ReplayHolder): Promise<HeldBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= cap) {
        // Each chunk kept is reserved from the holder's budget; what was reserved is given back
        // with the exchange's, whatever the outcome.
        if (holder && !holder.hold(chunk.length)) {
          stop();
          chunks.length = 0;
          req.resume();
          return void resolve({ kind: 'full' });
        }
        return void chunks.push(chunk);
      }
      stop();
      chunks.length = 0;
      req.resume(); // flowing with no listener: the rest is discarded
      resolve({ kind: 'over', seen: size });
    };
    const onEnd = () => {
      stop();
      resolve({ kind: 'held', body: Buffer.concat(chunks, size) });
    };
    const onError = (err: Error) => {
      stop();
      reject(err);
    };
    const onClose = () => {
      if (req.complete) return;
      stop();
      reject(new Error('the client closed before the request body ended'));
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}
