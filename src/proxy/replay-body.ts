import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';

/** Bodies up to this size are kept so a request can be replayed once after a refresh (PRODUCT.md). */
export const REPLAY_LIMIT = 1024 * 1024;

export type RequestBody =
  | { kind: 'none' }
  /** Whole body in memory: can be sent twice. */
  | { kind: 'kept'; body: Buffer }
  /** Larger than the limit: streamed once, never replayed. */
  | { kind: 'streamed'; stream: Readable };

export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Reads a request body (from `source`: the request, or a stage in front of it) for a grant whose requests may be replayed: up to REPLAY_LIMIT bytes are
 * kept; past that, what was read is sent first and the rest streams on without being kept.
 */
export async function readForReplay(req: IncomingMessage, source: Readable = req): Promise<RequestBody> {
  if (!hasBody(req)) return { kind: 'none' };
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > REPLAY_LIMIT) return { kind: 'streamed', stream: source };
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await iterator.next();
    if (done) return { kind: 'kept', body: Buffer.concat(chunks, size) };
    chunks.push(value);
    size += value.length;
    if (size > REPLAY_LIMIT) return { kind: 'streamed', stream: Readable.from(continueAfter(chunks, iterator), { objectMode: false }) };
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
