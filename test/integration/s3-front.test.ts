// The S3 front (test/helpers/s3-front.ts) is what keyway's SigV4 re-signing will be judged by, so it
// is tested first on its own, with no keyway in between: each real client with the real key must
// get through, the same client with a wrong secret must be refused as S3 refuses it, and a request
// spoiled after signing (body, date, an added header, a chunk) must be refused too. The `seen`
// records also pin down what each client sends by default (payload mode, aws-chunked, trailers):
// exactly the shapes keyway has to re-sign.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, ListBucketsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AWS_CLI, awsEnv, boto3, jsS3Client, run, testUndiciAgent } from '../helpers/aws-clients.ts';
import { type S3Front, type SeenS3Request, startS3Front } from '../helpers/s3-front.ts';
import { type HandSigned, signChunkedUpload, signRequest } from '../helpers/sigv4-client.ts';

const REAL = { accessKeyId: 'AKIAKEYWAYTEST000001', secretAccessKey: 'real-secret/kw+7f3a9c1e5b2d0000000000' };
const WRONG = { accessKeyId: REAL.accessKeyId, secretAccessKey: 'wrong-secret/placeholder000000000000000' };
const BUCKET = 'bkt';
const MiB = 1024 * 1024;

let front: S3Front;
let s3: S3Client;
let bad: S3Client;
const undici = testUndiciAgent();

beforeAll(async () => {
  front = await startS3Front({ keys: [REAL], buckets: [BUCKET], region: 'us-east-1' });
  s3 = jsS3Client(front.url, REAL);
  bad = jsS3Client(front.url, WRONG);
});

afterAll(async () => {
  s3?.destroy();
  bad?.destroy();
  await undici.close();
  await front?.close();
});

/** What the front saw from here on, while `action` runs. */
async function watch(action: () => Promise<unknown>): Promise<SeenS3Request[]> {
  const from = front.seen.length;
  await action();
  return front.seen.slice(from);
}

async function send(signed: HandSigned) {
  const answer = await request(signed.url, { method: signed.method as 'PUT', headers: signed.headers, body: signed.body, dispatcher: undici });
  return { status: answer.statusCode, body: await answer.body.text() };
}

const code = (xml: string) => /<Code>([^<]+)<\/Code>/.exec(xml)?.[1];
const accepted = (seen: SeenS3Request[]) => seen.every((r) => r.refused === undefined && r.accessKeyId === REAL.accessKeyId);

describe('@aws-sdk/client-s3 straight at the front', () => {
  it('lists, puts, gets and deletes with the real key; every request header-signed and verified', async () => {
    const seen = await watch(async () => {
      expect((await s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name)).toContain(BUCKET);
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'js/small.txt', Body: 'hello, signed world' }));
      expect(await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'js/small.txt' }))).Body?.transformToString()).toBe('hello, signed world');
      expect((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'js/' }))).Contents?.map((o) => o.Key)).toEqual(['js/small.txt']);
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'js/small.txt' }));
    });
    expect(seen.map((r) => r.method)).toEqual(['GET', 'PUT', 'GET', 'GET', 'DELETE']);
    expect(accepted(seen)).toBe(true);
    // The JS SDK hashes every body it holds, and sends a CRC32 header with a put.
    expect(seen.map((r) => r.payloadMode)).toEqual(['sha256', 'sha256', 'sha256', 'sha256', 'sha256']);
    expect(seen[1]).toMatchObject({ checksum: { name: 'x-amz-checksum-crc32', verified: true } });
    expect(seen[1]!.signedHeaders).toEqual(expect.arrayContaining(['host', 'x-amz-content-sha256', 'x-amz-date', 'x-amz-checksum-crc32', 'content-length']));
    expect(seen.every((r) => r.auth === 'header' && r.region === 'us-east-1' && !r.securityToken)).toBe(true);
    expect(seen[0]!.headers['authorization']).toContain(`Credential=${REAL.accessKeyId}/`);
  });

  it('is refused with a wrong secret: 403 SignatureDoesNotMatch, for a list and for a put', async () => {
    const seen = await watch(async () => {
      await expect(bad.send(new ListBucketsCommand({}))).rejects.toMatchObject({ name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } });
      await expect(bad.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'js/nope.txt', Body: 'x' }))).rejects.toMatchObject({ name: 'SignatureDoesNotMatch' });
    });
    expect(seen.map((r) => r.refused?.code)).toEqual(['SignatureDoesNotMatch', 'SignatureDoesNotMatch']);
    await expect(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'js/nope.txt' }))).rejects.toMatchObject({ name: 'NoSuchKey' });
  });

  it('uploads 11 MiB in parts through lib-storage (multipart), each part hashed and verified', async () => {
    const body = Buffer.alloc(11 * MiB, 0x61);
    const seen = await watch(() => new Upload({ client: s3, params: { Bucket: BUCKET, Key: 'js/multi.bin', Body: body } }).done());
    expect(accepted(seen)).toBe(true);
    const parts = seen.filter((r) => r.method === 'PUT');
    expect(parts.map((r) => r.payloadBytes).sort()).toEqual([1 * MiB, 5 * MiB, 5 * MiB]);
    expect(parts.every((r) => r.payloadMode === 'sha256' && r.checksum?.verified === true)).toBe(true);
    const got = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'js/multi.bin' }))).Body!.transformToByteArray();
    expect(Buffer.from(got).equals(body)).toBe(true);
  });

  it('streams a Readable put as aws-chunked STREAMING-UNSIGNED-PAYLOAD-TRAILER; s3rver stores the decoded bytes', async () => {
    const pieces = [Buffer.alloc(100_000, 0x31), Buffer.alloc(50_000, 0x32)];
    const seen = await watch(() =>
      s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'js/stream.bin', Body: Readable.from(pieces), ContentLength: 150_000 })),
    );
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      payloadMode: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
      contentEncoding: 'aws-chunked',
      transferEncoding: 'chunked',
      decodedContentLength: '150000',
      trailer: 'x-amz-checksum-crc32',
      checksum: { name: 'x-amz-checksum-crc32', verified: true },
      payloadBytes: 150_000,
    });
    expect(seen[0]!.bodyBytes).toBeGreaterThan(150_000); // the chunk framing was there, and was removed
    const got = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'js/stream.bin' }))).Body!.transformToByteArray();
    expect(Buffer.from(got).equals(Buffer.concat(pieces))).toBe(true);
  });

  it('uploads a Readable of unknown length through lib-storage (buffered into hashed parts)', async () => {
    // PutObjectCommand itself refuses a stream with no length ("x-amz-decoded-content-length"
    // undefined); lib-storage is how the SDK streams one.
    const pieces = Array.from({ length: 7 }, (_, i) => Buffer.alloc(MiB, 0x41 + i));
    const seen = await watch(() => new Upload({ client: s3, params: { Bucket: BUCKET, Key: 'js/unknown.bin', Body: Readable.from(pieces) } }).done());
    expect(accepted(seen)).toBe(true);
    expect(seen.filter((r) => r.method === 'PUT').map((r) => r.payloadMode)).toEqual(['sha256', 'sha256']);
    const got = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'js/unknown.bin' }))).Body!.transformToByteArray();
    expect(Buffer.from(got).equals(Buffer.concat(pieces))).toBe(true);
  });

  it('takes virtual-hosted requests (bkt.s3.us-east-1.amazonaws.com, resolved to loopback by the client) as S3 does', async () => {
    const vhost = jsS3Client(`https://s3.us-east-1.amazonaws.com:${front.port}`, REAL, { forcePathStyle: false });
    try {
      const seen = await watch(async () => {
        await vhost.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'js/vhost.txt', Body: 'by host name' }));
        expect(await (await vhost.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'js/vhost.txt' }))).Body?.transformToString()).toBe('by host name');
      });
      expect(seen.map((r) => [r.host, r.url.split('?')[0], r.virtualBucket])).toEqual([
        [`${BUCKET}.s3.us-east-1.amazonaws.com:${front.port}`, '/js/vhost.txt', BUCKET],
        [`${BUCKET}.s3.us-east-1.amazonaws.com:${front.port}`, '/js/vhost.txt', BUCKET],
      ]);
      expect(accepted(seen)).toBe(true);
    } finally {
      vhost.destroy();
    }
  });

  it('serves a presigned GET fetched with undici; refuses one presigned with a wrong secret or tampered', async () => {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'js/presigned.txt', Body: 'presigned body' }));
    const good = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: 'js/presigned.txt' }), { expiresIn: 60 });
    const wrong = await getSignedUrl(bad, new GetObjectCommand({ Bucket: BUCKET, Key: 'js/presigned.txt' }), { expiresIn: 60 });
    const get = async (url: string) => {
      const answer = await request(url, { dispatcher: undici });
      return { status: answer.statusCode, body: await answer.body.text() };
    };
    const seen = await watch(async () => {
      expect(await get(good)).toEqual({ status: 200, body: 'presigned body' });
      const refused = await get(wrong);
      expect(refused.status).toBe(403);
      expect(code(refused.body)).toBe('SignatureDoesNotMatch');
      expect(code((await get(good.replace('js%2Fpresigned.txt', 'js%2Fother.txt').replace('/js/presigned.txt', '/js/other.txt'))).body)).toBe(
        'SignatureDoesNotMatch',
      );
    });
    expect(seen[0]).toMatchObject({ auth: 'query', payloadMode: 'UNSIGNED-PAYLOAD', signedHeaders: ['host'] });
  });
});

describe('the aws CLI (Debian awscli) straight at the front', () => {
  it('lists, copies up (small and multipart) and down with the real key; refuses a wrong secret', async () => {
    const aws = awsEnv(REAL);
    const awsBad = awsEnv(WRONG);
    const endpoint = ['--endpoint-url', `https://127.0.0.1:${front.port}`];
    try {
      writeFileSync(join(aws.dir, 'small.txt'), 'c'.repeat(1000));
      writeFileSync(join(aws.dir, 'big.bin'), Buffer.alloc(9 * MiB, 0x62));
      const small = await watch(async () =>
        expect((await run(AWS_CLI, [...endpoint, 's3', 'cp', join(aws.dir, 'small.txt'), `s3://${BUCKET}/cli/small.txt`], aws.env)).code).toBe(0),
      );
      const big = await watch(async () =>
        expect((await run(AWS_CLI, [...endpoint, 's3', 'cp', join(aws.dir, 'big.bin'), `s3://${BUCKET}/cli/big.bin`], aws.env)).code).toBe(0),
      );
      const listed = await run(AWS_CLI, [...endpoint, 's3', 'ls', `s3://${BUCKET}/cli/`], aws.env);
      expect(listed.stdout).toMatch(/1000 small\.txt/);
      expect(listed.stdout).toMatch(/9437184 big\.bin/);
      expect((await run(AWS_CLI, [...endpoint, 's3', 'cp', `s3://${BUCKET}/cli/big.bin`, join(aws.dir, 'down.bin')], aws.env)).code).toBe(0);
      expect(readFileSync(join(aws.dir, 'down.bin')).equals(readFileSync(join(aws.dir, 'big.bin')))).toBe(true);
      expect(accepted([...small, ...big])).toBe(true);
      // Debian's awscli 2.9: UNSIGNED-PAYLOAD with Content-MD5 for object bodies, hex hashes otherwise.
      expect(small.map((r) => [r.method, r.payloadMode, r.contentEncoding])).toEqual([['PUT', 'UNSIGNED-PAYLOAD', undefined]]);
      expect(small[0]!.signedHeaders).toContain('content-md5');
      expect(big.filter((r) => r.method === 'PUT').every((r) => r.payloadMode === 'UNSIGNED-PAYLOAD')).toBe(true);

      const refused = await watch(async () => {
        const out = await run(AWS_CLI, [...endpoint, 's3', 'ls'], awsBad.env);
        expect(out.code).not.toBe(0);
        expect(out.stderr).toContain('SignatureDoesNotMatch');
      });
      expect(refused.map((r) => r.refused?.status)).toEqual([403]);
    } finally {
      aws.cleanup();
      awsBad.cleanup();
    }
  });
});

describe('boto3 (Debian python3-boto3) straight at the front', () => {
  it('put_object, get_object, list_objects_v2 and a multipart upload_fileobj with the real key; refuses a wrong secret', async () => {
    const aws = awsEnv(REAL);
    const awsBad = awsEnv(WRONG);
    const endpoint = `https://127.0.0.1:${front.port}`;
    const ok = async (args: string[]) => {
      const out = await boto3(endpoint, aws, args);
      expect(out.stderr).toBe('');
      return JSON.parse(out.stdout) as Record<string, unknown>;
    };
    try {
      const put = await watch(() => ok(['put_object', BUCKET, 'py/small', '1000']));
      expect(await ok(['get_object', BUCKET, 'py/small'])).toEqual({ ok: true, bytes: 1000, distinct: ['b'] });
      const upload = await watch(() => ok(['upload_fileobj', BUCKET, 'py/big', String(9 * MiB)]));
      expect(await ok(['list_objects_v2', BUCKET])).toMatchObject({ keys: expect.arrayContaining(['py/small', 'py/big']) });
      expect(accepted([...put, ...upload])).toBe(true);
      expect(put.map((r) => [r.payloadMode, r.contentEncoding])).toEqual([['UNSIGNED-PAYLOAD', undefined]]);
      expect(upload.map((r) => `${r.method} ${r.payloadMode}`).sort()).toEqual(['POST sha256', 'POST sha256', 'PUT UNSIGNED-PAYLOAD', 'PUT UNSIGNED-PAYLOAD']);

      const refused = await boto3(endpoint, awsBad, ['put_object', BUCKET, 'py/nope', '10']);
      expect(refused.code).toBe(2);
      expect(JSON.parse(refused.stdout)).toEqual({ ok: false, code: 'SignatureDoesNotMatch', status: 403 });
    } finally {
      aws.cleanup();
      awsBad.cleanup();
    }
  });
});

describe('what the front refuses that a signature alone would not catch', () => {
  const url = (key: string) => `${front.url}/${BUCKET}/${key}`;

  it('a body changed after signing (hex x-amz-content-sha256): 400 XAmzContentSHA256Mismatch', async () => {
    const signed = await signRequest({ method: 'PUT', url: url('spoiled.txt'), key: REAL, body: Buffer.from('the signed body') });
    expect((await send(signed)).status).toBe(200);
    const spoiled = await send({ ...signed, body: Buffer.from('the forged body') });
    expect(spoiled.status).toBe(400);
    expect(code(spoiled.body)).toBe('XAmzContentSHA256Mismatch');
  });

  it('an x-amz-date older than 15 minutes: 403 RequestTimeTooSkewed; 14 minutes passes', async () => {
    const stale = await send(await signRequest({ method: 'GET', url: url(''), key: REAL, date: new Date(Date.now() - 16 * 60_000) }));
    expect([stale.status, code(stale.body)]).toEqual([403, 'RequestTimeTooSkewed']);
    expect((await send(await signRequest({ method: 'GET', url: url(''), key: REAL, date: new Date(Date.now() - 14 * 60_000) }))).status).toBe(200);
  });

  it('an x-amz-* header added after signing, or a signed header taken away', async () => {
    const signed = await signRequest({ method: 'GET', url: url(''), key: REAL });
    const added = await send({ ...signed, headers: { ...signed.headers, 'x-amz-security-token': 'slipped-in' } });
    expect([added.status, code(added.body)]).toEqual([403, 'AccessDenied']);
    expect(added.body).toContain('x-amz-security-token');
    const withType = await signRequest({ method: 'PUT', url: url('typed.txt'), key: REAL, body: Buffer.from('t'), headers: { 'content-type': 'text/plain' } });
    const { 'content-type': _dropped, ...rest } = withType.headers;
    const missing = await send({ ...withType, headers: rest });
    expect([missing.status, code(missing.body)]).toEqual([403, 'SignatureDoesNotMatch']);
    expect(missing.body).toContain("signed header 'content-type'");
  });

  it('an unsigned request, and a scope for another region', async () => {
    const unsigned = await send({ method: 'GET', url: url(''), headers: {}, body: Buffer.alloc(0) });
    expect([unsigned.status, code(unsigned.body)]).toEqual([403, 'AccessDenied']);
    const elsewhere = await send(await signRequest({ method: 'GET', url: url(''), key: REAL, region: 'eu-west-1' }));
    expect([elsewhere.status, code(elsewhere.body)]).toEqual([400, 'AuthorizationHeaderMalformed']);
  });

  it('STREAMING-AWS4-HMAC-SHA256-PAYLOAD: a good chain is stored decoded; a changed chunk or reordered chunks are refused', async () => {
    const chunks = [Buffer.alloc(65_536, 0x61), Buffer.alloc(1024, 0x62)];
    const signed = await signChunkedUpload({ url: url('chunked.txt'), key: REAL, chunks });
    const seen = await watch(async () => expect((await send(signed)).status).toBe(200));
    expect(seen[0]).toMatchObject({ payloadMode: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', chunkSizes: [65_536, 1024], payloadBytes: 66_560 });
    const stored = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'chunked.txt' }))).Body!.transformToByteArray();
    expect(Buffer.from(stored).equals(Buffer.concat(chunks))).toBe(true);

    const flipped = Buffer.from(signed.body);
    flipped[66_000] = 0x63; // inside the second chunk's data
    const changed = await send({ ...signed, body: flipped });
    expect([changed.status, code(changed.body)]).toEqual([403, 'SignatureDoesNotMatch']);
    expect(changed.body).toContain('chunk 1');
    // The same two signed chunk frames, swapped: each frame intact, the chain broken.
    const firstFrameEnd = signed.body.indexOf('\r\n') + 2 + 65_536 + 2;
    const secondFrameEnd = signed.body.indexOf('\r\n', firstFrameEnd) + 2 + 1024 + 2;
    const frames = [signed.body.subarray(0, firstFrameEnd), signed.body.subarray(firstFrameEnd, secondFrameEnd), signed.body.subarray(secondFrameEnd)];
    const reordered = await send({ ...signed, body: Buffer.concat([frames[1]!, frames[0]!, frames[2]!]) });
    expect([reordered.status, code(reordered.body)]).toEqual([403, 'SignatureDoesNotMatch']);
    const wrongKey = await send(await signChunkedUpload({ url: url('chunked.txt'), key: WRONG, chunks }));
    expect(code(wrongKey.body)).toBe('SignatureDoesNotMatch');
  });

  it('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: the trailer signature and its CRC32 are checked', async () => {
    const chunks = [Buffer.alloc(8192, 0x71), Buffer.alloc(100, 0x72)];
    const signed = await signChunkedUpload({ url: url('trailer.txt'), key: REAL, chunks, trailer: 'x-amz-checksum-crc32' });
    const seen = await watch(async () => expect((await send(signed)).status).toBe(200));
    expect(seen[0]).toMatchObject({ payloadMode: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', checksum: { name: 'x-amz-checksum-crc32', verified: true } });
    const text = signed.body.toString('latin1');
    const badSignature = text.replace(/x-amz-trailer-signature:([0-9a-f])/, (_m, c: string) => `x-amz-trailer-signature:${c === '0' ? '1' : '0'}`);
    expect(code((await send({ ...signed, body: Buffer.from(badSignature, 'latin1') })).body)).toBe('SignatureDoesNotMatch');
    // A CRC32 of other data, correctly signed: the signature holds, the checksum does not.
    const wrongCrc = await signChunkedUpload({ url: url('trailer.txt'), key: REAL, chunks, trailer: 'x-amz-checksum-crc32', checksumValue: 'AAAAAA==' });
    const refused = await send(wrongCrc);
    expect([refused.status, code(refused.body)]).toEqual([400, 'BadDigest']);
  });
});
