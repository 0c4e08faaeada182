// The verifier behind the S3 front, STS and JSON doubles, held to the worked examples in S3's own
// documentation (AKIAIOSFODNN7EXAMPLE, 20130524T000000Z): a signature computed elsewhere, by AWS,
// must pass, and the same request changed in any signed part must not. Without this the front and
// the hand-signing helper could agree with each other and both be wrong.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseAwsChunked } from '../helpers/aws-chunked.ts';
import { signChunkedUpload } from '../helpers/sigv4-client.ts';
import { type SignedRequest, verifySigV4 } from '../helpers/sigv4-verifier.ts';

const KEY = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const AT = Date.UTC(2013, 4, 24);
const EMPTY = createHash('sha256').update('').digest('hex');
const SCOPE = 'AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request';

const at = (ms: number) => ({ keys: [KEY], now: () => AT + ms });
const req = (method: string, url: string, headers: Record<string, string>, body: Buffer = Buffer.alloc(0)): SignedRequest => ({
  method,
  url,
  headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
  body,
});
const auth = (signed: string, signature: string) => `AWS4-HMAC-SHA256 Credential=${SCOPE},SignedHeaders=${signed},Signature=${signature}`;

describe("S3's documented examples pass the verifier", () => {
  const getObject = (signature: string, extra: Record<string, string> = {}) =>
    req('GET', '/test.txt', {
      host: 'examplebucket.s3.amazonaws.com',
      range: 'bytes=0-9',
      'x-amz-content-sha256': EMPTY,
      'x-amz-date': '20130524T000000Z',
      authorization: auth('host;range;x-amz-content-sha256;x-amz-date', signature),
      ...extra,
    });
  const GOOD = 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41';

  it('GET Object with a Range header; a changed range, signature or clock is refused', async () => {
    expect(await verifySigV4(getObject(GOOD), at(0))).toMatchObject({ ok: true, auth: 'header', payloadMode: 'sha256', region: 'us-east-1' });
    expect(await verifySigV4(getObject(GOOD, { range: 'bytes=0-99' }), at(0))).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    expect(await verifySigV4(getObject(`0${GOOD.slice(1)}`), at(0))).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    expect(await verifySigV4(getObject(GOOD), at(16 * 60_000))).toMatchObject({ ok: false, code: 'RequestTimeTooSkewed' });
    expect(await verifySigV4(getObject(GOOD), { keys: [{ ...KEY, secretAccessKey: 'other' }], now: () => AT })).toMatchObject({
      ok: false,
      code: 'SignatureDoesNotMatch',
    });
  });

  it('GET Bucket (list) with a query, signed in canonical query order', async () => {
    const list = (url: string) =>
      req('GET', url, {
        host: 'examplebucket.s3.amazonaws.com',
        'x-amz-content-sha256': EMPTY,
        'x-amz-date': '20130524T000000Z',
        authorization: auth('host;x-amz-content-sha256;x-amz-date', '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7'),
      });
    expect(await verifySigV4(list('/?max-keys=2&prefix=J'), at(0))).toMatchObject({ ok: true });
    expect(await verifySigV4(list('/?prefix=J&max-keys=2'), at(0))).toMatchObject({ ok: true });
    expect(await verifySigV4(list('/?max-keys=3&prefix=J'), at(0))).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
  });

  it('a presigned GET (X-Amz-Expires=86400): valid within the day, expired after it', async () => {
    const url =
      '/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
      '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host' +
      '&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404';
    const get = (target: string) => req('GET', target, { host: 'examplebucket.s3.amazonaws.com' });
    expect(await verifySigV4(get(url), at(3600_000))).toMatchObject({ ok: true, auth: 'query', payloadMode: 'UNSIGNED-PAYLOAD', signedHeaders: ['host'] });
    expect(await verifySigV4(get(url), at(86_401_000))).toMatchObject({ ok: false, code: 'AccessDenied', reason: expect.stringContaining('expired') });
    expect(await verifySigV4(get(url.replace('test.txt', 'test2.txt')), at(0))).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    expect(await verifySigV4(get(url.replace('Expires=86400', 'Expires=86401')), at(0))).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
  });

  describe('the chunked PUT (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, 65 KiB of "a" in 64 KiB chunks)', () => {
    const SIGNATURES = [
      'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
      '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
      'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
    ];
    const SEED = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9';
    const documentedBody = (signatures: string[]) =>
      Buffer.concat([
        Buffer.from(`10000;chunk-signature=${signatures[0]}\r\n`),
        Buffer.alloc(65_536, 'a'),
        Buffer.from(`\r\n400;chunk-signature=${signatures[1]}\r\n`),
        Buffer.alloc(1024, 'a'),
        Buffer.from(`\r\n0;chunk-signature=${signatures[2]}\r\n\r\n`),
      ]);
    const put = (body: Buffer) =>
      req(
        'PUT',
        '/examplebucket/chunkObject.txt',
        {
          host: 's3.amazonaws.com',
          'x-amz-date': '20130524T000000Z',
          'x-amz-storage-class': 'REDUCED_REDUNDANCY',
          'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
          'content-encoding': 'aws-chunked',
          'x-amz-decoded-content-length': '66560',
          'content-length': '66824',
          authorization: auth('content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class', SEED),
        },
        body,
      );

    it('verifies the seed and every chunk signature, and decodes the 66560 bytes', async () => {
      expect(documentedBody(SIGNATURES).length).toBe(66_824);
      const verified = await verifySigV4(put(documentedBody(SIGNATURES)), at(0));
      expect(verified).toMatchObject({ ok: true, payloadMode: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', chunkSizes: [65_536, 1024] });
      expect(verified.ok && verified.payload.equals(Buffer.alloc(66_560, 'a'))).toBe(true);
    });

    it('refuses a wrong final chunk signature, a changed byte, and a missing final chunk', async () => {
      expect(await verifySigV4(put(documentedBody([SIGNATURES[0]!, SIGNATURES[1]!, SIGNATURES[0]!])), at(0))).toMatchObject({
        ok: false,
        code: 'SignatureDoesNotMatch',
        reason: expect.stringContaining('chunk 2'),
      });
      const changed = documentedBody(SIGNATURES);
      changed[100] = 0x62;
      expect(await verifySigV4(put(changed), at(0))).toMatchObject({ ok: false, reason: expect.stringContaining('chunk 0') });
      const truncated = documentedBody(SIGNATURES).subarray(0, 66_740);
      expect(await verifySigV4(put(truncated), at(0))).toMatchObject({ ok: false, code: 'IncompleteBody' });
    });

    it('the hand-signing helper writes exactly the documented request', async () => {
      const signed = await signChunkedUpload({
        url: 'https://s3.amazonaws.com/examplebucket/chunkObject.txt',
        key: KEY,
        chunks: [Buffer.alloc(65_536, 'a'), Buffer.alloc(1024, 'a')],
        headers: { 'x-amz-storage-class': 'REDUCED_REDUNDANCY' },
        date: new Date(AT),
      });
      expect(signed.headers['authorization']).toMatch(new RegExp(`Signature=${SEED}$`));
      expect(signed.body.equals(documentedBody(SIGNATURES))).toBe(true);
    });
  });
});

describe('aws-chunked framing', () => {
  it('reads unsigned chunks with a trailer, and says what is wrong with a broken body', () => {
    const body = Buffer.from('3\r\nabc\r\n2\r\nde\r\n0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n');
    expect(parseAwsChunked(body)).toMatchObject({ trailers: [['x-amz-checksum-crc32', 'AAAA']], decoded: Buffer.from('abcde') });
    expect(() => parseAwsChunked(Buffer.from('zz\r\nabc\r\n'))).toThrow(/not a hex size/);
    expect(() => parseAwsChunked(Buffer.from('5\r\nabc\r\n0\r\n\r\n'))).toThrow(/CRLF|past the end/);
    expect(() => parseAwsChunked(Buffer.from('3\r\nabc\r\n0\r\n\r\nextra'))).toThrow(/after its end/);
  });
});
