// Signed requests (issue 24): an aws_sigv4 grant. The agent's clients sign with placeholder keys;
// keyway discards that signature and signs each request again with the real key, and the S3 front
// (test/helpers/s3-front.ts) verifies every signature, body hash and chunk with AWS's own signer
// before s3rver sees the request. The real clients: @aws-sdk/client-s3 (with lib-storage for
// multipart), Debian's aws CLI and boto3, each through keyway as an agent would run it.
import { Agent as HttpsAgent } from 'node:https';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AWS_CLI, awsEnv, boto3, jsS3Client, run } from '../../../../test/helpers/aws-clients.ts';
import { CANARY } from '../../../../test/helpers/fixtures.ts';
import { cleanEnv, runCli, runProcess, startProxy, TEST_HOSTS, type TestProxy } from '../../../../test/helpers/keyway.ts';
import { h2Request, h2ThroughProxy } from '../../../../test/helpers/http2-client.ts';
import { findLeak } from '../../../../test/helpers/leak-canary.ts';
import { type S3Front, type SeenS3Request, startS3Front } from '../../../../test/helpers/s3-front.ts';
import { signChunkedUpload } from '../../../../test/helpers/sigv4-client.ts';
import { AWS_TEST_HOSTS } from '../../../../test/helpers/test-leaf.ts';

const REAL = { accessKeyId: 'AKIAKEYWAYREAL000001', secretAccessKey: `${CANARY}-aws-secret/kw+7f3a9c1e5b2d` };
// What the agent holds: keyway env sets these for an aws_sigv4 grant.
const PLACEHOLDER = { accessKeyId: 'AKIAKEYWAYPLACEHOLDR', secretAccessKey: 'keyway-placeholder-secret-access-key00' };
// A grant whose stored key is not the one the front knows: what it signs must be refused there.
const WRONG = { accessKeyId: REAL.accessKeyId, secretAccessKey: `${CANARY}-aws-wrong/kw+0000000000` };
const BUCKET = 'bkt';
const MiB = 1024 * 1024;

describe('aws_sigv4: keyway signs the agent AWS requests again with the real key', () => {
  let front: S3Front;
  let proxy: TestProxy;
  let endpoint: string;
  let agent: HttpsAgent;
  let s3: S3Client;
  const outputs: string[] = [];

  beforeAll(async () => {
    front = await startS3Front({ keys: [REAL], buckets: [BUCKET], region: 'us-east-1' });
    endpoint = `https://s3.us-east-1.amazonaws.com:${front.port}`;
    proxy = await startProxy({
      env: { AWS_REAL: JSON.stringify(REAL), AWS_WRONG: JSON.stringify(WRONG) },
      config: {
        proxy: { hosts: Object.fromEntries([...TEST_HOSTS, ...AWS_TEST_HOSTS, `${BUCKET}.s3.us-east-1.amazonaws.com`].map((h) => [h, '127.0.0.1'])) },
        grants: {
          aws: { type: 'aws_sigv4', domains: ['s3.us-east-1.amazonaws.com', '*.s3.us-east-1.amazonaws.com'], secret: 'env:AWS_REAL', max_signed_body: '6MiB' },
          // The allowlists refuse what they do not name: this host is us-east-1 and dynamodb.
          wrong: { type: 'aws_sigv4', domains: ['s3.amazonaws.com'], secret: 'env:AWS_WRONG' },
          'eu-only': { type: 'aws_sigv4', domains: ['dynamodb.us-east-1.amazonaws.com'], secret: 'env:AWS_REAL', regions: ['eu-west-1'], services: ['s3'] },
        },
      },
    });
    // Node 24's own proxy support (proxyEnv): the SDK ignores HTTPS_PROXY, so it is given an agent.
    agent = new HttpsAgent({ proxyEnv: { HTTPS_PROXY: proxy.url }, ca: readFileSync(proxy.bundlePath, 'utf8'), keepAlive: true } as never);
    s3 = jsS3Client(endpoint, PLACEHOLDER, { agent });
  });

  afterAll(async () => {
    s3?.destroy();
    agent?.destroy();
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...outputs, ...proxy.logs]) {
      expect(findLeak(text, REAL.secretAccessKey), 'the real secret in an output').toBeUndefined();
      expect(findLeak(text, WRONG.secretAccessKey), 'a stored secret in an output').toBeUndefined();
    }
    // The placeholder never reaches the upstream: not as the key id, not anywhere in a header.
    for (const seen of front.seen) expect(JSON.stringify(seen.headers)).not.toContain(PLACEHOLDER.accessKeyId);
    await proxy?.stop();
    await front?.close();
  });

  /** What the front saw while `action` ran. */
  async function watch(action: () => Promise<unknown>): Promise<SeenS3Request[]> {
    const from = front.seen.length;
    await action();
    return front.seen.slice(from);
  }
  const verified = (seen: SeenS3Request[]) => seen.length > 0 && seen.every((r) => r.refused === undefined && r.accessKeyId === REAL.accessKeyId);

  it('the JS SDK: put, get, list, delete, each signed again with the real key and verified by the front', async () => {
    const seen = await watch(async () => {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'js/small.txt', Body: 'hello, re-signed world' }));
      expect(await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'js/small.txt' }))).Body?.transformToString()).toBe('hello, re-signed world');
      expect((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'js/' }))).Contents?.map((o) => o.Key)).toEqual(['js/small.txt']);
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'js/small.txt' }));
    });
    expect(seen.map((r) => r.method)).toEqual(['PUT', 'GET', 'GET', 'DELETE']);
    expect(verified(seen)).toBe(true);
    // The client's own signed headers are signed again (the put's CRC32 among them).
    expect(seen[0]!.signedHeaders).toEqual(expect.arrayContaining(['host', 'x-amz-content-sha256', 'x-amz-date', 'x-amz-checksum-crc32']));
    const lines = proxy.auditLines().filter((l) => l['decision'] === 'inject');
    expect(lines.at(-1)).toMatchObject({ grant: 'aws', signed: 'sigv4', region: 'us-east-1', service: 's3' });
  });

  it('the JS SDK: a multipart upload (lib-storage) and a streamed put (STREAMING-UNSIGNED-PAYLOAD-TRAILER)', async () => {
    const seen = await watch(async () => {
      const upload = new Upload({
        client: s3,
        params: { Bucket: BUCKET, Key: 'js/multi.bin', Body: Buffer.alloc(11 * MiB, 'm') },
        partSize: 5 * MiB,
        queueSize: 2,
      });
      await upload.done();
      const streamed = Readable.from([Buffer.alloc(300_000, 's'), Buffer.alloc(200_000, 't')]);
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'js/streamed.bin', Body: streamed, ContentLength: 500_000 }));
    });
    expect(verified(seen)).toBe(true);
    expect(seen.filter((r) => r.method === 'PUT' && r.url.includes('partNumber='))).toHaveLength(3);
    expect(seen.at(-1)!.payloadMode).toBe('STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'js/multi.bin' }));
    expect((await got.Body!.transformToByteArray()).length).toBe(11 * MiB);
  });

  it('the aws CLI through HTTPS_PROXY: cp up, ls, cp down', async () => {
    const aws = awsEnv(PLACEHOLDER, proxy.bundlePath);
    try {
      const env = { ...aws.env, HTTPS_PROXY: proxy.url };
      const file = join(aws.dir, 'up.txt');
      writeFileSync(file, 'from the aws cli');
      const seen = await watch(async () => {
        const up = await run(AWS_CLI, ['s3', 'cp', file, `s3://${BUCKET}/cli/up.txt`, '--endpoint-url', endpoint], env);
        outputs.push(up.stdout, up.stderr);
        expect(up.code, up.stderr).toBe(0);
        const ls = await run(AWS_CLI, ['s3', 'ls', `s3://${BUCKET}/cli/`, '--endpoint-url', endpoint], env);
        outputs.push(ls.stdout, ls.stderr);
        expect(ls.stdout).toContain('up.txt');
        const down = await run(AWS_CLI, ['s3', 'cp', `s3://${BUCKET}/cli/up.txt`, join(aws.dir, 'down.txt'), '--endpoint-url', endpoint], env);
        outputs.push(down.stdout, down.stderr);
        expect(down.code, down.stderr).toBe(0);
      });
      expect(readFileSync(join(aws.dir, 'down.txt'), 'utf8')).toBe('from the aws cli');
      expect(verified(seen)).toBe(true);
      // Past 8 MiB the CLI uploads in parts and downloads in ranges: Range must reach the upstream
      // (an AWS key is never sent, so no answer can echo it in slices).
      const big = Buffer.alloc(9 * MiB);
      for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
      writeFileSync(join(aws.dir, 'big.bin'), big);
      const ranged = await watch(async () => {
        for (const args of [
          ['s3', 'cp', join(aws.dir, 'big.bin'), `s3://${BUCKET}/cli/big.bin`],
          ['s3', 'cp', `s3://${BUCKET}/cli/big.bin`, join(aws.dir, 'big-down.bin')],
        ]) {
          const r = await run(AWS_CLI, [...args, '--endpoint-url', endpoint], env);
          outputs.push(r.stdout, r.stderr);
          expect(r.code, r.stderr).toBe(0);
        }
      });
      expect(readFileSync(join(aws.dir, 'big-down.bin')).equals(big)).toBe(true);
      expect(ranged.some((r) => r.method === 'GET' && r.headers['range'] !== undefined)).toBe(true);
      expect(verified(ranged)).toBe(true);
    } finally {
      aws.cleanup();
    }
    // Three runs of the aws CLI (a Python start each) and a 9 MiB round trip: past 30 s on a busy machine.
  });

  it('curl --aws-sigv4 over HTTP/2 inside the tunnel (no Host header, :authority instead) is signed for the right host', async () => {
    const seen = await watch(async () => {
      const res = await runProcess(
        'curl',
        [
          '-sS',
          '--http2',
          '-w',
          '\\n%{http_version} %{http_code}',
          '--aws-sigv4',
          'aws:amz:us-east-1:s3',
          '--user',
          `${PLACEHOLDER.accessKeyId}:${PLACEHOLDER.secretAccessKey}`,
          '-H',
          'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
          `${endpoint}/${BUCKET}?list-type=2`,
        ],
        cleanEnv({ HTTPS_PROXY: proxy.url, CURL_CA_BUNDLE: proxy.bundlePath }),
      );
      outputs.push(res.stdout, res.stderr);
      expect(res.stdout.trim().split('\n').at(-1)).toBe('2 200');
    });
    expect(verified(seen)).toBe(true);
  });

  it('keyway env gives the aws CLI placeholder keys and AWS_CA_BUNDLE, and the CLI works with exactly those', async () => {
    const printed = await proxy.cli(['env', '--json']);
    expect(printed.code, printed.stderr).toBe(0);
    const vars = JSON.parse(printed.stdout) as Record<string, string>;
    expect(vars).toMatchObject({ AWS_ACCESS_KEY_ID: 'keyway-placeholder', AWS_SECRET_ACCESS_KEY: 'keyway-placeholder', AWS_CA_BUNDLE: proxy.bundlePath });
    const aws = awsEnv(PLACEHOLDER);
    try {
      const env = { ...aws.env, ...vars };
      const seen = await watch(async () => {
        const ls = await run(AWS_CLI, ['s3', 'ls', `s3://${BUCKET}/`, '--endpoint-url', endpoint], env);
        outputs.push(ls.stdout, ls.stderr);
        expect(ls.code, ls.stderr).toBe(0);
      });
      expect(verified(seen)).toBe(true);
    } finally {
      aws.cleanup();
    }
  });

  it('boto3 through HTTPS_PROXY: put_object, get_object, list_objects_v2, and a multipart upload_fileobj', async () => {
    const aws = awsEnv(PLACEHOLDER, proxy.bundlePath);
    try {
      const env = { ...aws.env, HTTPS_PROXY: proxy.url };
      const seen = await watch(async () => {
        for (const args of [
          ['put_object', BUCKET, 'py/small.bin', '1000'],
          ['get_object', BUCKET, 'py/small.bin'],
          ['list_objects_v2', BUCKET],
          ['upload_fileobj', BUCKET, 'py/big.bin', String(9 * MiB)],
        ]) {
          const result = await boto3(endpoint, { ...aws, env }, args);
          outputs.push(result.stdout, result.stderr);
          expect(result.code, `${args[0]}: ${result.stdout} ${result.stderr}`).toBe(0);
        }
      });
      expect(verified(seen)).toBe(true);
    } finally {
      aws.cleanup();
    }
  });

  it('grants add --from-aws-profile imports a profile key from the shared files, never printing it; a role or SSO profile is refused by name', async () => {
    const home = mkdtempSync(join(tmpdir(), 'keyway-aws-profile-'));
    try {
      mkdirSync(join(home, '.aws'));
      writeFileSync(join(home, '.aws', 'credentials'), `[work]\naws_access_key_id = ${REAL.accessKeyId}\naws_secret_access_key = ${REAL.secretAccessKey}\n`);
      writeFileSync(
        join(home, '.aws', 'config'),
        '[profile work]\nregion = eu-west-1\n[profile admin]\nrole_arn = arn:aws:iam::123456789012:role/admin\nsource_profile = work\n',
      );
      const env = { ...cleanEnv({ HOME: home, KEYWAY_HOME: join(home, 'keyway'), KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') }) };
      const added = await runCli(['grants', 'add', 'imported', '--from-aws-profile', 'work'], env);
      outputs.push(added.stdout, added.stderr);
      expect(added.code, added.stderr).toBe(0);
      const shown = await runCli(['grants', 'show', 'imported', '--json'], env);
      outputs.push(shown.stdout);
      // The key id is shown (it names the key, as a user name does); the secret never.
      expect(JSON.parse(shown.stdout)).toMatchObject({ type: 'aws_sigv4', domains: ['*.amazonaws.com'], secret: 'set', key_id: REAL.accessKeyId });
      const words = await runCli(['grants', 'show', 'imported'], env);
      outputs.push(words.stdout);
      expect(words.stdout).toMatch(new RegExp(`Key id:\\s+${REAL.accessKeyId}`));
      const scoped = await runCli(['grants', 'add', 'scoped', '--from-aws-profile', 'work', '--region', 'eu-west-1', '--service', 's3'], env);
      outputs.push(scoped.stdout, scoped.stderr);
      expect(scoped.code, scoped.stderr).toBe(0);
      expect(JSON.parse((await runCli(['grants', 'show', 'scoped', '--json'], env)).stdout).inject).toMatch(/\(eu-west-1\/s3\)$/);
      const badRegion = await runCli(['grants', 'add', 'bad', '--from-aws-profile', 'work', '--region', 'Not A Region'], env);
      expect(badRegion.code).toBe(2);
      expect(badRegion.stderr).toContain('--region');
      const role = await runCli(['grants', 'add', 'admin', '--from-aws-profile', 'admin'], env);
      outputs.push(role.stdout, role.stderr);
      expect(role.code).not.toBe(0);
      expect(role.stderr).toContain('profile "admin" assumes a role');
      const missing = await runCli(['grants', 'add', 'x', '--from-aws-profile', 'nope'], env);
      expect(missing.stderr).toContain('no profile "nope"');
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
    // Eight CLI runs, each a node start: ~10 s idle, past 30 s on a busy 2-core machine.
  });

  describe('what keyway will not sign wrong', () => {
    let raw: ProxyAgent;
    beforeAll(() => {
      raw = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    });
    afterAll(async () => {
      await raw?.close();
    });
    async function call(path: string, headers: Record<string, string>, method = 'GET', body?: string) {
      const res = await request(`${endpoint}${path}`, { dispatcher: raw, method: method as 'GET', headers, body });
      const text = await res.body.text();
      outputs.push(text);
      return { status: res.statusCode, code: res.headers['x-keyway-error'], text };
    }

    it('aws-chunked framing keyway cannot read and SigV4a: 400 bad_request or signature_unsupported, nothing sent upstream', async () => {
      const seen = await watch(async () => {
        const chunked = await call(
          `/${BUCKET}/x`,
          { 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'content-encoding': 'aws-chunked' },
          'PUT',
          '0;chunk-signature=00\r\n\r\n',
        );
        expect(chunked).toMatchObject({ status: 400, code: 'bad_request' });
        expect(chunked.text).toContain('chunk-signature');
        const sigv4a = await call(`/${BUCKET}/x`, {
          authorization: 'AWS4-ECDSA-P256-SHA256 Credential=X/20260101/s3/aws4_request, SignedHeaders=host, Signature=00',
        });
        expect(sigv4a).toMatchObject({ status: 400, code: 'signature_unsupported' });
      });
      expect(seen).toEqual([]);
    });

    it('a presigned URL (the JS SDK presigner) is signed again in the query, and the front verifies it', async () => {
      const url = new URL(await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: 'js/streamed.bin' }), { expiresIn: 120 }));
      expect(url.searchParams.get('X-Amz-Credential')).toContain(PLACEHOLDER.accessKeyId);
      const seen = await watch(async () => {
        const res = await request(url, { dispatcher: raw });
        const body = Buffer.from(await res.body.arrayBuffer());
        expect(res.statusCode).toBe(200);
        expect(body.length).toBe(500_000);
      });
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ auth: 'query', accessKeyId: REAL.accessKeyId });
      expect(seen[0]!.refused).toBeUndefined();
      // The client's own X-Amz-Expires is kept; the signature and date are keyway's.
      expect(new URL(seen[0]!.url, 'https://x').searchParams.get('X-Amz-Expires')).toBe('120');
    });

    it('a body to hash over max_signed_body: 413 body_too_large; an unsigned payload of any size streams', async () => {
      const big = 'b'.repeat(6 * MiB + 1);
      const seen = await watch(async () => {
        expect(await call(`/${BUCKET}/too-big`, {}, 'PUT', big)).toMatchObject({ status: 413, code: 'body_too_large' });
        expect((await call(`/${BUCKET}/unsigned-big`, { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' }, 'PUT', big)).status).toBe(200);
      });
      expect(seen.map((r) => r.url)).toEqual([`/${BUCKET}/unsigned-big`]);
      expect(verified(seen)).toBe(true);
    });

    it('an unsigned request is signed too, and the allowlists refuse a region or service they do not name', async () => {
      const seen = await watch(async () => {
        expect((await call(`/${BUCKET}?list-type=2`, {})).status).toBe(200);
      });
      expect(verified(seen)).toBe(true);
      const dynamo = await request(`https://dynamodb.us-east-1.amazonaws.com:${front.port}/`, { dispatcher: raw, method: 'POST', body: '{}' });
      const text = await dynamo.body.text();
      expect(dynamo.statusCode).toBe(403);
      expect(dynamo.headers['x-keyway-error']).toBe('policy_denied');
      expect(JSON.parse(text).error.message).toContain('region us-east-1');
    });
  });

  describe('signed aws-chunked streams (STREAMING-AWS4-HMAC-SHA256-PAYLOAD): each chunk signed again as it passes', () => {
    let raw: ProxyAgent;
    beforeAll(() => {
      raw = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    });
    afterAll(async () => {
      await raw?.close();
    });
    /** Sends a hand-signed request through keyway, its body in `pieces` when given (streamed). */
    async function send(signed: { method: string; url: string; headers: Record<string, string>; body: Buffer }, pieces?: Buffer[]) {
      const headers = { ...signed.headers };
      delete headers['host']; // undici writes Host from the URL (the same name and port)
      const body = pieces ? Readable.from(pieces) : signed.body;
      const res = await request(signed.url, { dispatcher: raw, method: signed.method as 'PUT', headers, body });
      const text = await res.body.text();
      outputs.push(text);
      return { status: res.statusCode, code: res.headers['x-keyway-error'], text };
    }
    const pieces = (body: Buffer, size: number) => Array.from({ length: Math.ceil(body.length / size) }, (_, i) => body.subarray(i * size, (i + 1) * size));

    it('signed with the placeholder, with and without a trailer: the front verifies every chunk against the real key', async () => {
      const chunks = [Buffer.alloc(64 * 1024, 'a'), Buffer.alloc(64 * 1024, 'b'), Buffer.alloc(1000, 'c')];
      for (const trailer of [undefined, 'x-amz-checksum-crc32'] as const) {
        const key = `chunked/${trailer ?? 'plain'}.bin`;
        const signed = await signChunkedUpload({ url: `${endpoint}/${BUCKET}/${key}`, key: PLACEHOLDER, chunks, ...(trailer ? { trailer } : {}) });
        // The body comes in pieces that cut chunk headers and signatures (streamed, never whole).
        const seen = await watch(async () => {
          expect(await send(signed, pieces(signed.body, 997))).toMatchObject({ status: 200 });
        });
        expect(verified(seen)).toBe(true);
        expect(seen[0]).toMatchObject({
          payloadMode: trailer ? 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER' : 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
          chunkSizes: chunks.map((c) => c.length),
          // Each signature replaced by one of the same length: the Content-Length the client signed holds.
          contentLength: signed.headers['content-length'],
          ...(trailer ? { checksum: { name: trailer, verified: true } } : {}),
        });
        const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
        expect(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat(chunks))).toBe(true);
      }
      const lines = proxy.auditLines().filter((l) => l['decision'] === 'inject');
      expect(lines.at(-1)).toMatchObject({ grant: 'aws', signed: 'sigv4', status: 200 });
    });

    it('over HTTP/2 from the agent (no Transfer-Encoding, the body in DATA frames): verified by the front the same', async () => {
      const authority = `s3.us-east-1.amazonaws.com:${front.port}`;
      const chunks = [Buffer.alloc(70_000, 'h'), Buffer.alloc(3, '2')];
      const signed = await signChunkedUpload({
        url: `https://${authority}/${BUCKET}/chunked/h2.bin`,
        key: PLACEHOLDER,
        chunks,
        trailer: 'x-amz-checksum-sha256',
      });
      const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath);
      try {
        const { host: _host, ...headers } = signed.headers;
        const seen = await watch(async () => {
          const answer = await h2Request(session, { ':method': 'PUT', ':path': `/${BUCKET}/chunked/h2.bin`, ':authority': authority, ...headers }, signed.body);
          outputs.push(answer.body.toString());
          expect(answer.headers[':status']).toBe(200);
        });
        expect(verified(seen)).toBe(true);
        expect(seen[0]).toMatchObject({ chunkSizes: [70_000, 3], checksum: { name: 'x-amz-checksum-sha256', verified: true } });
      } finally {
        session.close();
      }
    });

    it('signed again with a stored key that is not the real one: refused by the front (SignatureDoesNotMatch)', async () => {
      const url = `https://s3.amazonaws.com:${front.port}/${BUCKET}/chunked/wrong.bin`;
      const signed = await signChunkedUpload({ url, key: PLACEHOLDER, chunks: [Buffer.alloc(5000, 'w')], trailer: 'x-amz-checksum-crc32' });
      const seen = await watch(async () => {
        expect((await send(signed)).status).toBe(403);
      });
      expect(seen.map((r) => r.refused?.code)).toEqual(['SignatureDoesNotMatch']);
    });

    it('a chunk over max_signed_body: 413 body_too_large before anything goes upstream; bad framing later in the body: refused, never passed on', async () => {
      const head = await signChunkedUpload({ url: `${endpoint}/${BUCKET}/chunked/big.bin`, key: PLACEHOLDER, chunks: [Buffer.alloc(10)] });
      const huge = Buffer.from(`${(7 * MiB).toString(16)};chunk-signature=${'0'.repeat(64)}\r\n`);
      const early = await watch(async () => {
        const answer = await send({ ...head, headers: { ...head.headers, 'content-length': String(huge.length) }, body: huge });
        expect(answer).toMatchObject({ status: 413, code: 'body_too_large' });
        expect(answer.text).toContain('max_signed_body');
      });
      expect(early).toEqual([]);
      // A good first chunk, then a second whose data runs past its size: the upstream gets a cut
      // body (the request is aborted), never a complete one; the agent gets keyway's refusal.
      const signed = await signChunkedUpload({
        url: `${endpoint}/${BUCKET}/chunked/broken.bin`,
        key: PLACEHOLDER,
        chunks: [Buffer.alloc(1000, 'x'), Buffer.alloc(10, 'y')],
      });
      const broken = Buffer.from(signed.body.toString('latin1').replace('yyyyyyyyyy\r\n', 'yyyyyyyyyyz\r'), 'latin1');
      const later = await watch(async () => {
        expect(await send({ ...signed, body: broken })).toMatchObject({
          status: 400,
          code: 'bad_request',
          text: expect.stringContaining('not followed by CRLF'),
        });
      });
      expect(later.every((r) => r.refused !== undefined || r.status === undefined)).toBe(true);
      await expect(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'chunked/broken.bin' }))).rejects.toThrow();
    });
  });
});
