// The aws-chunked body S3 accepts for streaming uploads, read the way S3 reads it: each chunk is
// `SIZE-HEX[;chunk-signature=SIG]\r\n DATA \r\n`, a zero-size chunk ends the data, then trailing
// header lines (`x-amz-checksum-crc32:VALUE`, `x-amz-trailer-signature:SIG`) and an empty line.
// Written from S3's documentation, apart from any client's encoder, so a client's (or keyway's)
// framing mistake shows up here instead of being read back by the same code that wrote it.
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

export interface AwsChunk {
  data: Buffer;
  /** The `chunk-signature` extension, when the body is signed chunk by chunk. */
  signature?: string;
}

export interface AwsChunkedBody {
  chunks: AwsChunk[];
  /** Trailing headers in order, names lower-cased, `x-amz-trailer-signature` excluded. */
  trailers: Array<[string, string]>;
  trailerSignature?: string;
  decoded: Buffer;
}

/** Parses a whole aws-chunked body; throws with a one-line reason on any framing error. */
export function parseAwsChunked(body: Buffer): AwsChunkedBody {
  const chunks: AwsChunk[] = [];
  let at = 0;
  const line = (): string => {
    const end = body.indexOf('\r\n', at);
    if (end < 0) throw new Error(`aws-chunked body ends inside a line at byte ${at}`);
    const text = body.subarray(at, end).toString('latin1');
    at = end + 2;
    return text;
  };
  for (;;) {
    const header = line();
    const [sizeHex = '', ...extensions] = header.split(';');
    if (!/^[0-9a-fA-F]{1,16}$/.test(sizeHex)) throw new Error(`aws-chunked chunk header is not a hex size: ${JSON.stringify(header.slice(0, 80))}`);
    const size = Number.parseInt(sizeHex, 16);
    const signature = extensions.find((e) => e.startsWith('chunk-signature='))?.slice('chunk-signature='.length);
    if (size === 0) {
      chunks.push({ data: Buffer.alloc(0), ...(signature !== undefined ? { signature } : {}) });
      break;
    }
    if (at + size + 2 > body.length) throw new Error(`aws-chunked chunk of ${size} bytes runs past the end of the body`);
    const data = body.subarray(at, at + size);
    at += size;
    if (body.subarray(at, at + 2).toString('latin1') !== '\r\n') throw new Error('aws-chunked chunk data is not followed by CRLF');
    at += 2;
    chunks.push({ data, ...(signature !== undefined ? { signature } : {}) });
  }
  const trailers: Array<[string, string]> = [];
  let trailerSignature: string | undefined;
  for (;;) {
    if (at >= body.length) break; // some encoders end right after the last chunk's CRLF
    const text = line();
    if (text === '') break;
    const colon = text.indexOf(':');
    if (colon <= 0) throw new Error(`aws-chunked trailer line has no name: ${JSON.stringify(text.slice(0, 80))}`);
    const name = text.slice(0, colon).trim().toLowerCase();
    const value = text.slice(colon + 1).trim();
    if (name === 'x-amz-trailer-signature') trailerSignature = value;
    else trailers.push([name, value]);
  }
  if (at !== body.length) throw new Error(`aws-chunked body has ${body.length - at} bytes after its end`);
  const decoded = Buffer.concat(chunks.map((c) => c.data));
  return { chunks, trailers, ...(trailerSignature !== undefined ? { trailerSignature } : {}), decoded };
}

/** The base64 value S3 expects in `x-amz-checksum-NAME` for `data`, or undefined for an algorithm Node lacks. */
export function checksumOf(name: string, data: Buffer): string | undefined {
  const algorithm = name.replace(/^x-amz-checksum-/, '');
  if (algorithm === 'crc32') {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(crc32(data) >>> 0);
    return out.toString('base64');
  }
  if (algorithm === 'sha1' || algorithm === 'sha256') return createHash(algorithm).update(data).digest('base64');
  return undefined; // crc32c, crc64nvme: no implementation in node:zlib or node:crypto
}
