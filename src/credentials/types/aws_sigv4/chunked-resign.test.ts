import { describe, expect, it } from 'vitest';
import { type ChunkChain, type ChunkedBody, resignChunkedBody } from './signing/chunked.ts';
import { parseClientAuthorization } from './signing/scope.ts';
import { signAwsRequest, stringSigner } from './signing/sign.ts';
import { ProxyError } from '../../../errors/index.ts';
import { parseAwsChunked } from '../../../../test/helpers/aws-chunked.ts';
import { type HandSigned, signChunkedUpload } from '../../../../test/helpers/sigv4-client.ts';
import { verifySigV4 } from '../../../../test/helpers/sigv4-verifier.ts';

// An aws-chunked body signed with the placeholder key, signed again chunk by chunk the way the
// proxy does (head with signAwsRequest, chunks with resignChunkedBody), then checked by the
// verifier that the S3 front uses: every chunk signature and the trailer signature against the
// real key. The body reaches the re-signer cut at every awkward place, down to a byte at a time.

const REAL = {
  kind: 'aws' as const,
  accessKeyId: 'AKIAKEYWAYREAL000001',
  secretAccessKey: 'real-secret-access-key-for-the-unit-test',
  sessionToken: undefined,
};
const PLACEHOLDER = { accessKeyId: REAL.accessKeyId, secretAccessKey: 'keyway-placeholder-secret-access-key00' };
const URL_ = 'https://s3.us-east-1.amazonaws.com/bkt/chunked.bin';
const SCOPE = { region: 'us-east-1', service: 's3' };

const data = (size: number, seed: number) => Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + seed) & 0xff));

async function* piecesOf(pieces: Buffer[]): AsyncGenerator<Buffer> {
  for (const piece of pieces) yield piece;
}
const byteByByte = (body: Buffer) => [...body].map((b) => Buffer.from([b]));
const cutAt = (body: Buffer, at: number) => [body.subarray(0, at), body.subarray(at)];

/** The client's request signed again with the real key: its head, and how its chunks are to be signed. */
async function signHead(client: HandSigned): Promise<{ headers: Record<string, string>; chain: ChunkChain }> {
  const auth = parseClientAuthorization(client.headers['authorization']);
  if (auth.kind !== 'sigv4') throw new Error('the client did not sign');
  const headers = { ...client.headers };
  delete headers['authorization'];
  const now = new Date();
  const signed = await signAwsRequest(
    {
      method: 'PUT',
      host: headers['host']!,
      path: new URL(client.url).pathname,
      headers,
      signedHeaders: auth.signature.signedHeaders,
      payloadHash: headers['x-amz-content-sha256']!,
    },
    REAL,
    SCOPE,
    now,
  );
  Object.assign(headers, { authorization: signed.authorization, 'x-amz-date': signed['x-amz-date'] });
  return {
    headers,
    chain: { seedSignature: signed.signature, amzDate: signed['x-amz-date'], credentialScope: signed.credentialScope, sign: stringSigner(REAL, SCOPE, now) },
  };
}

async function resign(pieces: Buffer[], body: ChunkedBody): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const piece of resignChunkedBody(piecesOf(pieces), body)) out.push(piece);
  return Buffer.concat(out);
}

async function resignedAndVerified(client: HandSigned, cut: (body: Buffer) => Buffer[], trailer: boolean) {
  const { headers, chain } = await signHead(client);
  const decodedLength = Number(client.headers['x-amz-decoded-content-length']);
  const body = await resign(cut(client.body), { chain, trailer, maxChunk: 1024 * 1024, reserve: undefined, decodedLength, grantId: 'aws' });
  const verified = await verifySigV4(
    { method: 'PUT', url: new URL(client.url).pathname, headers: Object.fromEntries(Object.entries(headers).map(([n, v]) => [n, [v]])), body },
    { keys: [{ accessKeyId: REAL.accessKeyId, secretAccessKey: REAL.secretAccessKey }], region: 'us-east-1', service: 's3' },
  );
  return { body, verified };
}

describe('aws-chunked bodies signed again chunk by chunk', () => {
  const chunks = [data(100, 1), data(37, 2), data(1, 3), data(64, 4)];

  for (const trailer of [undefined, 'x-amz-checksum-crc32'] as const) {
    const mode = trailer ? 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER' : 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';

    it(`${mode}: whole, byte by byte, and cut in two at every offset, verifies against the real key`, async () => {
      const client = await signChunkedUpload({ url: URL_, key: PLACEHOLDER, chunks, ...(trailer ? { trailer } : {}) });
      const clientSignatures = parseAwsChunked(client.body).chunks.map((c) => c.signature!);
      const cuts: Array<(body: Buffer) => Buffer[]> = [(b) => [b], byteByByte];
      for (let at = 1; at < client.body.length; at++) cuts.push((b) => cutAt(b, at));
      for (const cut of cuts) {
        const { body, verified } = await resignedAndVerified(client, cut, trailer !== undefined);
        expect(verified, JSON.stringify(verified).slice(0, 300)).toMatchObject({ ok: true, payloadMode: mode });
        // The same length as the client's (so its Content-Length stays true), none of its signatures.
        expect(body.length).toBe(client.body.length);
        for (const signature of clientSignatures) expect(body.includes(signature)).toBe(false);
        if (verified.ok) {
          expect(verified.payload.equals(Buffer.concat(chunks))).toBe(true);
          expect(verified.chunkSizes).toEqual(chunks.map((c) => c.length));
          if (trailer) expect(verified.checksum).toEqual({ name: trailer, verified: true });
        }
      }
    });
  }

  it('streams: a chunk goes on as soon as it is read, while the rest of the body has not come', async () => {
    const client = await signChunkedUpload({ url: URL_, key: PLACEHOLDER, chunks });
    const { chain } = await signHead(client);
    const firstChunkEnd = client.body.indexOf('\r\n', client.body.indexOf('\r\n') + 2) + 2;
    let release!: () => void;
    const rest = new Promise<void>((resolve) => {
      release = resolve;
    });
    async function* slowClient(): AsyncGenerator<Buffer> {
      yield client.body.subarray(0, firstChunkEnd);
      await rest;
      yield client.body.subarray(firstChunkEnd);
    }
    const out = resignChunkedBody(slowClient(), { chain, trailer: false, maxChunk: 1024, reserve: undefined, decodedLength: undefined, grantId: 'aws' });
    const header = (await out.next()).value!.toString('latin1');
    expect(header).toMatch(/^64;chunk-signature=[0-9a-f]{64}\r\n$/);
    expect((await out.next()).value).toEqual(chunks[0]);
    release();
    let total = header.length + chunks[0]!.length;
    for await (const piece of out) total += piece.length;
    expect(total).toBe(client.body.length);
  });

  it('the client chunk signatures, passed on unchanged, would be refused: the verifier checks each one', async () => {
    const client = await signChunkedUpload({ url: URL_, key: PLACEHOLDER, chunks });
    const { headers } = await signHead(client);
    const verified = await verifySigV4(
      { method: 'PUT', url: '/bkt/chunked.bin', headers: Object.fromEntries(Object.entries(headers).map(([n, v]) => [n, [v]])), body: client.body },
      { keys: [{ accessKeyId: REAL.accessKeyId, secretAccessKey: REAL.secretAccessKey }] },
    );
    expect(verified).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
  });

  describe('framing keyway cannot sign again exactly is refused', () => {
    const chain: ChunkChain = {
      seedSignature: 'a'.repeat(64),
      amzDate: '20261123T193000Z',
      credentialScope: '20261123/us-east-1/s3/aws4_request',
      sign: async () => 'b'.repeat(64),
    };
    const sig = 'c'.repeat(64);
    const options = (extra: Partial<ChunkedBody> = {}): ChunkedBody => ({
      chain,
      trailer: false,
      maxChunk: 1024,
      reserve: undefined,
      decodedLength: undefined,
      grantId: 'aws',
      ...extra,
    });
    async function refusal(text: string | Buffer, extra: Partial<ChunkedBody> = {}) {
      const body = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
      for (const cut of [(b: Buffer) => [b], byteByByte]) {
        const error = await resign(cut(body), options(extra)).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(error, `accepted: ${JSON.stringify(body.toString('latin1').slice(0, 80))}`).toBeInstanceOf(ProxyError);
        if (cut !== byteByByte) continue;
        return { code: (error as ProxyError).code, message: (error as ProxyError).message };
      }
      throw new Error('unreachable');
    }

    it('a well-formed body passes (the baseline for the refusals below)', async () => {
      const out = await resign([Buffer.from(`3;chunk-signature=${sig}\r\nabc\r\n0;chunk-signature=${sig}\r\n\r\n`)], options({ decodedLength: 3 }));
      expect(out.toString()).toBe(`3;chunk-signature=${'b'.repeat(64)}\r\nabc\r\n0;chunk-signature=${'b'.repeat(64)}\r\n\r\n`);
    });

    it('a malformed chunk header, signature or chunk end: 400 bad_request', async () => {
      for (const text of [
        `3\r\nabc\r\n0;chunk-signature=${sig}\r\n\r\n`, // no signature
        `3;chunk-signature=${sig.slice(1)}\r\nabc\r\n0;chunk-signature=${sig}\r\n\r\n`, // 63 digits
        `3;chunk-signature=${sig};x=1\r\nabc\r\n0;chunk-signature=${sig}\r\n\r\n`, // another extension
        `x3;chunk-signature=${sig}\r\nabc\r\n0;chunk-signature=${sig}\r\n\r\n`, // not a hex size
        `3;chunk-signature=${sig}\nabc\r\n0;chunk-signature=${sig}\r\n\r\n`, // bare LF
        `3;chunk-signature=${sig}\r\nabcd\r\n0;chunk-signature=${sig}\r\n\r\n`, // data longer than its size
        `3;chunk-signature=${sig}\r\nab`, // ends inside a chunk
        `3;chunk-signature=${sig}\r\nabc\r\n`, // no final chunk
        '',
        `0;chunk-signature=${sig}\r\n\r\nmore`, // bytes after the end
        `0;chunk-signature=${sig}\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n`, // a trailer without -TRAILER
      ]) {
        expect(await refusal(text)).toMatchObject({ code: 'bad_request' });
      }
    });

    it('a header line that never ends is refused within a few KiB; a chunk over the bound before its data is read', async () => {
      expect(await refusal(`3;chunk-signature=${'c'.repeat(10_000)}`)).toMatchObject({ code: 'bad_request', message: expect.stringContaining('longer than') });
      const over = await refusal(`401;chunk-signature=${sig}\r\n`);
      expect(over).toMatchObject({ code: 'body_too_large', message: expect.stringContaining('1025 > 1024') });
    });

    it("the chunk held is counted against the agent's memory for held bodies: its peak, once; refused when spent", async () => {
      const body = (sizes: number[]) =>
        Buffer.from(`${sizes.map((n) => `${n.toString(16)};chunk-signature=${sig}\r\n${'d'.repeat(n)}\r\n`).join('')}0;chunk-signature=${sig}\r\n\r\n`);
      const asked: number[] = [];
      await resign([body([100, 37, 300, 64])], options({ reserve: (bytes) => asked.push(bytes) > 0 }));
      expect(asked).toEqual([100, 200]);
      const spent = await refusal(body([100, 300]), { reserve: (bytes) => bytes <= 100 });
      expect(spent).toMatchObject({ code: 'body_too_large', message: expect.stringContaining('memory') });
    });

    it('data that does not add up to x-amz-decoded-content-length: 400 bad_request', async () => {
      const body = `3;chunk-signature=${sig}\r\nabc\r\n0;chunk-signature=${sig}\r\n\r\n`;
      expect(await refusal(body, { decodedLength: 4 })).toMatchObject({ code: 'bad_request', message: expect.stringContaining('decoded-content-length') });
      expect(await refusal(body, { decodedLength: 2 })).toMatchObject({ code: 'bad_request', message: expect.stringContaining('more than 2') });
    });

    it('-TRAILER: a trailer with no signature, a signature not last, a line that is not NAME:VALUE', async () => {
      const end = `0;chunk-signature=${sig}\r\n`;
      for (const text of [
        `${end}x-amz-checksum-crc32:AAAAAA==\r\n\r\n`,
        `${end}\r\n`,
        end,
        `${end}x-amz-trailer-signature:${sig}\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n`,
        `${end}no colon here\r\nx-amz-trailer-signature:${sig}\r\n\r\n`,
        `${end}x-amz-trailer-signature:${sig}\r\n\r\nmore`,
        `${end}${'x-a:b\r\n'.repeat(17)}x-amz-trailer-signature:${sig}\r\n\r\n`,
        `${end}x-a:${'v'.repeat(5000)}\r\nx-amz-trailer-signature:${sig}\r\n\r\n`, // a line over 4 KiB, even arriving whole
      ]) {
        expect(await refusal(text, { trailer: true })).toMatchObject({ code: 'bad_request' });
      }
    });
  });
});
