import { createHash, hash } from 'node:crypto';
import { ProxyError } from '../../../../errors/index.ts';
import { ChunkReader, FramingError } from './chunk-reader.ts';

// A signed aws-chunked body (x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD, and its
// -TRAILER form), signed again chunk by chunk as it passes. Each chunk of the client's body carries
// a signature chained from its request's signature, made with the placeholder key; keyway signed the
// request head again with the real key (its seed signature), so every chunk signature, and the
// trailer's, is recomputed in a chain from that seed:
//
//   SIZE-HEX;chunk-signature=SIG\r\n DATA \r\n    ... one per chunk, then the final zero-size chunk
//   0;chunk-signature=SIG\r\n
//   name:value\r\n ... x-amz-trailer-signature:SIG\r\n    (-TRAILER only)
//   \r\n
//
// A chunk's signature covers its data's hash, so its header can only be written once the whole
// chunk was read: one chunk is held at a time, bounded by `maxChunk`. Everything the client sent is
// passed on byte for byte except the signatures, which are replaced by ones of the same length
// (64 hex digits): the body's length does not change, so the Content-Length the client signed stays
// true. Any framing keyway cannot read exactly is refused, never passed on half understood.

export interface ChunkChain {
  /** The request's own signature, as keyway signed it: the first chunk's previous signature. */
  seedSignature: string;
  /** X-Amz-Date of the signed request (20261123T193000Z). */
  amzDate: string;
  /** DATE/REGION/SERVICE/aws4_request. */
  credentialScope: string;
  /** HMAC-SHA256 of a string to sign with the request's derived signing key, as hex. */
  sign(stringToSign: string): Promise<string>;
}

export interface ChunkedBody {
  chain: ChunkChain;
  /** STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: the final chunk is followed by a signed trailer. */
  trailer: boolean;
  /** The largest chunk held to hash it. */
  maxChunk: number;
  /**
   * Reserves memory for the chunk held, from the agent's budget for held bodies: called with what
   * a chunk needs beyond the largest before it, so the reservation is the most held at once.
   * False: the budget is spent, and the body is refused. Undefined: nothing to count against.
   */
  reserve: ((bytes: number) => boolean) | undefined;
  /** x-amz-decoded-content-length, when the client declared it: the data must add up to it. */
  decodedLength: number | undefined;
  grantId: string;
}

// A chunk header is about 90 bytes and a trailer line (a checksum) under 100: these bounds leave
// room for any real client while keeping what a line can make keyway buffer small.
const MAX_LINE = 4096;
const MAX_TRAILER_LINES = 16;
const EMPTY_SHA256 = hash('sha256', '', 'hex');
const CRLF = Buffer.from('\r\n');
const CHUNK_HEADER = /^([0-9a-fA-F]{1,16});chunk-signature=[0-9a-fA-F]{64}$/;
const TRAILER_SIGNATURE = /^(x-amz-trailer-signature:[ \t]*)[0-9a-fA-F]{64}([ \t]*)$/i;
const TRAILER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):([^\r\n\0]*)$/;

/**
 * The body re-signed, as it passes: yields the framing with keyway's signatures. Throws a
 * ProxyError (bad_request, body_too_large) on framing it cannot re-sign exactly. `source` is read
 * with destroyOnReturn false, so a refusal leaves the client connection able to carry the answer.
 */
export async function* resignChunkedBody(source: AsyncIterator<Buffer>, body: ChunkedBody): AsyncGenerator<Buffer> {
  const reader = new ChunkReader(source);
  const { chain } = body;
  const sign = (algorithm: string, ...lines: string[]) => chain.sign([algorithm, chain.amzDate, chain.credentialScope, ...lines].join('\n'));
  let previous = chain.seedSignature;
  let decoded = 0;
  let reserved = 0;
  try {
    for (;;) {
      const header = (await reader.line(MAX_LINE, 'a chunk header')).toString('latin1');
      const match = CHUNK_HEADER.exec(header);
      if (!match) throw new FramingError(`a chunk header is not SIZE;chunk-signature=SIGNATURE: ${JSON.stringify(header.slice(0, 40))}`);
      const sizeText = match[1]!;
      const size = Number.parseInt(sizeText, 16);
      if (size > body.maxChunk) throw chunkTooLarge(body, size);
      if (size > reserved) {
        if (body.reserve !== undefined && !body.reserve(size - reserved)) throw memorySpent(body);
        reserved = size;
      }
      decoded += size;
      if (body.decodedLength !== undefined && decoded > body.decodedLength) throw lengthMismatch(body.decodedLength, `more than ${body.decodedLength}`);
      const data = size === 0 ? [] : await reader.pieces(size, 'a chunk');
      if (size > 0 && !(await reader.bytes(2, 'a chunk')).equals(CRLF)) throw new FramingError('a chunk is not followed by CRLF');
      const digest = createHash('sha256');
      for (const piece of data) digest.update(piece);
      previous = await sign('AWS4-HMAC-SHA256-PAYLOAD', previous, EMPTY_SHA256, digest.digest('hex'));
      yield Buffer.from(`${sizeText};chunk-signature=${previous}\r\n`, 'latin1');
      if (size === 0) break;
      yield* data;
      yield CRLF;
    }
    if (body.decodedLength !== undefined && decoded !== body.decodedLength) throw lengthMismatch(body.decodedLength, String(decoded));
    yield* resignTrailer(reader, body, (canonical) => sign('AWS4-HMAC-SHA256-TRAILER', previous, hash('sha256', canonical, 'hex')));
  } catch (err) {
    if (err instanceof FramingError) {
      throw new ProxyError('bad_request', `the aws-chunked body cannot be signed again: ${err.message}`, {
        grant: body.grantId,
        hint: 'send the body framed as S3 documents it (SIZE;chunk-signature=SIG CRLF DATA CRLF, ending with a 0-size chunk)',
      });
    }
    throw err;
  } finally {
    await reader.close();
  }
}

/** What follows the final chunk: an empty line (or nothing), or for -TRAILER the signed trailer. */
async function* resignTrailer(reader: ChunkReader, body: ChunkedBody, sign: (canonical: string) => Promise<string>): AsyncGenerator<Buffer> {
  // Some encoders end right after the final chunk's header; the same bytes go on, so that is kept.
  if (!body.trailer) {
    if (await reader.atEnd()) return;
    const line = await reader.line(MAX_LINE, 'the end of the body');
    if (line.length > 0) throw new FramingError('trailing headers need x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER');
    yield CRLF;
    if (!(await reader.atEnd())) throw new FramingError('bytes follow the end of the body');
    return;
  }
  const lines: Buffer[] = [];
  let canonical = '';
  for (;;) {
    if (lines.length === MAX_TRAILER_LINES) throw new FramingError(`the trailer has more than ${MAX_TRAILER_LINES} lines`);
    const line = (await reader.line(MAX_LINE, 'a trailer line')).toString('latin1');
    const signature = TRAILER_SIGNATURE.exec(line);
    if (signature) {
      // The signature covers the trailer lines before it, as the upstream reads them: names in
      // lower case, values trimmed, each ended by a newline.
      const fresh = await sign(canonical);
      for (const kept of lines) yield kept;
      yield Buffer.from(`${signature[1]}${fresh}${signature[2]}\r\n`, 'latin1');
      break;
    }
    const field = TRAILER_LINE.exec(line);
    if (!field) throw new FramingError(line === '' ? 'the trailer has no x-amz-trailer-signature' : 'a trailer line is not NAME:VALUE');
    canonical += `${field[1]!.toLowerCase()}:${field[2]!.trim()}\n`;
    lines.push(Buffer.from(`${line}\r\n`, 'latin1'));
  }
  if (await reader.atEnd()) return;
  if ((await reader.line(MAX_LINE, 'the end of the trailer')).length > 0) throw new FramingError('the trailer signature is not the last trailer line');
  yield CRLF;
  if (!(await reader.atEnd())) throw new FramingError('bytes follow the end of the body');
}

function chunkTooLarge(body: ChunkedBody, size: number): ProxyError {
  return new ProxyError(
    'body_too_large',
    `grant "${body.grantId}" holds one aws-chunked chunk to sign it, and this one is over max_signed_body (${size} > ${body.maxChunk} bytes)`,
    {
      grant: body.grantId,
      hint: 'send smaller chunks (the SDKs send 64 KiB), or raise max_signed_body on the grant',
    },
  );
}

function memorySpent(body: ChunkedBody): ProxyError {
  return new ProxyError('body_too_large', `grant "${body.grantId}" holds one aws-chunked chunk to sign it, and the agent's memory for held bodies is spent`, {
    grant: body.grantId,
    hint: 'send smaller chunks, or fewer large uploads at once',
  });
}

function lengthMismatch(declared: number, got: string): FramingError {
  return new FramingError(`x-amz-decoded-content-length is ${declared}, the chunks hold ${got} bytes`);
}
