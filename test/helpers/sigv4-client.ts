// Requests signed by hand with @smithy/signature-v4, for the shapes no installed client sends by
// default (STREAMING-AWS4-HMAC-SHA256-PAYLOAD and its -TRAILER variant, which the Java and Go SDKs
// use over plain HTTP) and for deliberately broken ones (a stale date, a body changed after signing,
// an unsigned x-amz-* header). Tests of keyway send these with a placeholder key through the proxy;
// tests of the doubles send them straight.
import { createHash } from 'node:crypto';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { checksumOf } from './aws-chunked.ts';

export interface ClientKey {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface HandSigned {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Buffer;
}

interface SignInput {
  method: string;
  url: string;
  key: ClientKey;
  region?: string;
  service?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** x-amz-content-sha256: a hex hash of the body (default for s3), UNSIGNED-PAYLOAD, or none at all. */
  payload?: 'sha256' | 'UNSIGNED-PAYLOAD' | 'none';
  date?: Date;
}

function signerFor(key: ClientKey, region: string, service: string): SignatureV4 {
  return new SignatureV4({ credentials: key, region, service, sha256: Hash.bind(null, 'sha256'), uriEscapePath: service !== 's3', applyChecksum: false });
}

function requestParts(url: string) {
  const u = new URL(url);
  const query: Record<string, string> = {};
  for (const [name, value] of u.searchParams) query[name] = value;
  return { protocol: u.protocol, hostname: u.hostname, port: Number(u.port), path: u.pathname, query, host: u.host };
}

/** A header-signed request over exactly the headers given plus host (and x-amz-* the signer adds). */
export async function signRequest(input: SignInput): Promise<HandSigned> {
  const service = input.service ?? 's3';
  const body = input.body ?? Buffer.alloc(0);
  const parts = requestParts(input.url);
  const headers: Record<string, string> = { host: parts.host, ...input.headers };
  const payload = input.payload ?? (service === 's3' ? 'sha256' : 'none');
  if (payload === 'sha256') headers['x-amz-content-sha256'] = createHash('sha256').update(body).digest('hex');
  if (payload === 'UNSIGNED-PAYLOAD') headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
  if (body.length > 0) headers['content-length'] = String(body.length);
  const signed = await signerFor(input.key, input.region ?? 'us-east-1', service).sign(
    { method: input.method, ...parts, headers, body },
    { signingDate: input.date ?? new Date() },
  );
  return { method: input.method, url: input.url, headers: signed.headers as Record<string, string>, body };
}

interface ChunkedInput {
  url: string;
  key: ClientKey;
  chunks: Buffer[];
  region?: string;
  /** Adds a signed trailer with this checksum (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER). */
  trailer?: 'x-amz-checksum-crc32' | 'x-amz-checksum-sha256';
  /** More headers to sign (x-amz-storage-class, content-type, ...). */
  headers?: Record<string, string>;
  /** The trailer's checksum value, when a test wants a wrong one (default: the data's). */
  checksumValue?: string;
  date?: Date;
}

/** A PUT whose body is aws-chunked, each chunk signed in a chain from the seed signature. */
export async function signChunkedUpload(input: ChunkedInput): Promise<HandSigned> {
  const region = input.region ?? 'us-east-1';
  const date = input.date ?? new Date();
  const parts = requestParts(input.url);
  const signer = signerFor(input.key, region, 's3');
  const decoded = Buffer.concat(input.chunks);
  const mode = input.trailer ? 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER' : 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
  const trailerLines = input.trailer ? [[input.trailer, input.checksumValue ?? checksumOf(input.trailer, decoded)!] as const] : [];
  // The signature is 64 hex digits whatever its value, so the encoded length is known before signing.
  const encode = (signatures: string[], trailerSignature: string) => {
    const pieces: Buffer[] = [];
    [...input.chunks, Buffer.alloc(0)].forEach((chunk, i) => {
      pieces.push(Buffer.from(`${chunk.length.toString(16)};chunk-signature=${signatures[i]}\r\n`), chunk);
      if (chunk.length > 0) pieces.push(Buffer.from('\r\n'));
    });
    if (input.trailer) {
      for (const [name, value] of trailerLines) pieces.push(Buffer.from(`${name}:${value}\r\n`));
      pieces.push(Buffer.from(`x-amz-trailer-signature:${trailerSignature}\r\n`));
    }
    pieces.push(Buffer.from('\r\n'));
    return Buffer.concat(pieces);
  };
  const placeholder = '0'.repeat(64);
  const encodedLength = encode(new Array(input.chunks.length + 1).fill(placeholder), placeholder).length;
  const headers: Record<string, string> = {
    host: parts.host,
    ...input.headers,
    'content-encoding': 'aws-chunked',
    'content-length': String(encodedLength),
    'x-amz-content-sha256': mode,
    'x-amz-decoded-content-length': String(decoded.length),
    ...(input.trailer ? { 'x-amz-trailer': input.trailer } : {}),
  };
  const seeded = await signer.sign({ method: 'PUT', ...parts, headers }, { signingDate: date });
  const seed = /Signature=([0-9a-f]{64})$/.exec(String(seeded.headers['authorization']))![1]!;
  const context = { signingDate: date, signingRegion: region, signingService: 's3' };
  const signatures: string[] = [];
  let prior = seed;
  for (const chunk of [...input.chunks, Buffer.alloc(0)]) {
    prior = await signer.sign({ headers: new Uint8Array(0), payload: chunk }, { ...context, priorSignature: prior });
    signatures.push(prior);
  }
  let trailerSignature = '';
  if (input.trailer) {
    const longDate = String(seeded.headers['x-amz-date']);
    const scope = `${longDate.slice(0, 8)}/${region}/s3/aws4_request`;
    const canonicalTrailer = trailerLines.map(([name, value]) => `${name}:${value}\n`).join('');
    const stringToSign = ['AWS4-HMAC-SHA256-TRAILER', longDate, scope, prior, createHash('sha256').update(canonicalTrailer).digest('hex')].join('\n');
    trailerSignature = await signer.sign(stringToSign, context);
  }
  return { method: 'PUT', url: input.url, headers: seeded.headers as Record<string, string>, body: encode(signatures, trailerSignature) };
}
