// keyway signs SigV4 requests with its own canonical request (src/credentials/types/aws_sigv4/signing/
// canonical.ts), for speed. This holds it to AWS's implementation, @smithy/signature-v4: the same
// requests, generated with the shapes that trip canonicalisation up (repeated and reserved query
// names, escapes, white space in values, `.` and `..` in paths, headers signers skip, a session
// token), signed by both, must give the same Authorization header, for S3 and for other services.
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { type RequestToSign, signAwsRequest, stringSigner } from './signing/sign.ts';

const KEY = {
  kind: 'aws' as const,
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  sessionToken: undefined as string | undefined,
};
const WITH_TOKEN = { ...KEY, sessionToken: 'FwoGZXIvYXdzEJr//////////wEaDExample+token/==' };
const NOW = new Date('2013-05-24T00:00:00.123Z');

function smithy(credential: typeof WITH_TOKEN | typeof KEY, region: string, service: string) {
  return new SignatureV4({
    credentials: credential,
    region,
    service,
    sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: service !== 's3',
    applyChecksum: false,
  });
}

/** What smithy signs for the same request: the same inputs keyway had before it signed itself. */
async function smithyAuthorization(request: RequestToSign, credential: typeof KEY, region: string, service: string): Promise<string> {
  const q = request.path.indexOf('?');
  const query: Record<string, string | string[]> = {};
  for (const pair of q === -1 ? [] : request.path.slice(q + 1).split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = decodeURIComponent(eq === -1 ? pair : pair.slice(0, eq));
    const value = decodeURIComponent(eq === -1 ? '' : pair.slice(eq + 1));
    const had = query[name];
    query[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  const wanted =
    request.signedHeaders === undefined ? undefined : new Set([...request.signedHeaders, 'host', 'x-amz-date', 'x-amz-content-sha256', 'x-amz-security-token']);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (['host', 'authorization', 'x-amz-security-token', 'x-amz-date'].includes(name)) continue;
    if (wanted && !wanted.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  headers['host'] = request.host;
  headers['x-amz-content-sha256'] = request.payloadHash;
  const path = q === -1 ? request.path : request.path.slice(0, q);
  const signed = await smithy(credential, region, service).sign(
    { method: request.method, protocol: 'https:', hostname: request.host, path, query, headers },
    { signingDate: NOW, ...(wanted ? { signableHeaders: wanted } : {}) },
  );
  return signed.headers['authorization']!;
}

/** A small deterministic generator (mulberry32), so a failure names a seed that replays it. */
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  return { next, pick };
}

const SEGMENTS = ['bucket', 'key.txt', '.', '..', '', 'a%20b', 'caf%C3%A9', 'x+y', 'we!rd(1)*', '~tilde', 'a%2Fb', '%E2%82%AC'];
const QUERY = [
  'list-type=2',
  'prefix=a%2Fb',
  'prefix=',
  'uploads',
  'marker=z',
  'marker=a',
  'x=%21%27%28%29%2A',
  'A=1',
  'a=1',
  'sp=a+b',
  'sp=a%20b',
  'X-Amz-Signature=dead',
  'b=%E2%82%AC',
  'empty',
];
const HEADERS: Array<[string, string | string[]]> = [
  ['content-type', 'application/x-amz-json-1.1'],
  ['user-agent', 'aws-cli/2.9.19 Python/3.11'],
  ['x-amz-target', 'DynamoDB_20120810.ListTables'],
  ['range', 'bytes=0-9'],
  ['x-amz-meta-note', '  spaced    out   value  '],
  ['x-amz-meta-list', ['one', 'two']],
  ['content-md5', 'XrY7u+Ae7tCTyyK7j1rNww=='],
  ['expect', '100-continue'],
  ['proxy-authorization', 'Basic Zm9vOmJhcg=='],
  ['sec-fetch-mode', 'cors'],
  ['x-amzn-trace-id', 'Root=1-5759e988'],
  ['date', 'Fri, 24 May 2013 00:00:00 GMT'],
  ['x-amz-date', '20000101T000000Z'],
  ['x-amz-security-token', 'client-placeholder-token'],
  ['authorization', 'AWS4-HMAC-SHA256 Credential=placeholder'],
  ['transfer-encoding', 'chunked'],
];

function generated(seed: number): { request: RequestToSign; region: string; service: string; credential: typeof KEY } {
  const r = random(seed);
  const service = r.pick(['s3', 's3', 'dynamodb', 'execute-api', 'sts']);
  const region = r.pick(['us-east-1', 'eu-west-1', 'ap-southeast-2']);
  const segments = Array.from({ length: 1 + Math.floor(r.next() * 4) }, () => r.pick(SEGMENTS));
  const path = `/${segments.join('/')}${r.next() < 0.3 ? '/' : ''}`;
  const query = Array.from({ length: Math.floor(r.next() * 5) }, () => r.pick(QUERY)).join('&');
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of HEADERS) if (r.next() < 0.4) headers[name] = value;
  const names = Object.keys(headers);
  const signedHeaders = r.next() < 0.5 ? undefined : names.filter(() => r.next() < 0.6);
  return {
    request: {
      method: r.pick(['GET', 'PUT', 'POST', 'DELETE', 'HEAD']),
      host: r.pick([`${service}.${region}.amazonaws.com`, 'bucket.s3.amazonaws.com:8443']),
      path: query === '' ? path : `${path}?${query}`,
      headers,
      signedHeaders,
      payloadHash: r.pick(['UNSIGNED-PAYLOAD', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER']),
    },
    region,
    service,
    credential: r.next() < 0.5 ? KEY : WITH_TOKEN,
  };
}

describe("keyway's SigV4 signer gives the Authorization header AWS's own signer gives", () => {
  it('S3 documentation example: GET Object with a Range header', () => {
    const signed = signAwsRequest(
      {
        method: 'GET',
        host: 'examplebucket.s3.amazonaws.com',
        path: '/test.txt',
        headers: { range: 'bytes=0-9' },
        signedHeaders: ['host', 'range', 'x-amz-content-sha256', 'x-amz-date'],
        payloadHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      },
      KEY,
      { region: 'us-east-1', service: 's3' },
      new Date('2013-05-24T00:00:00Z'),
    );
    // The signature AWS's documentation prints for this request ("Signature Calculations for the
    // Authorization Header", Example: GET Object).
    expect(signed.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
    expect(signed['x-amz-date']).toBe('20130524T000000Z');
  });

  it('on 2,000 generated requests (S3 and other services, signed headers given or not, with and without a session token)', async () => {
    const differences: string[] = [];
    for (let seed = 1; seed <= 2000; seed++) {
      const { request, region, service, credential } = generated(seed);
      const ours = signAwsRequest(request, credential, { region, service }, NOW);
      const theirs = await smithyAuthorization(request, credential, region, service);
      if (ours.authorization !== theirs) differences.push(`seed ${seed}: ${JSON.stringify(request)}\n  keyway ${ours.authorization}\n  smithy ${theirs}`);
      expect(ours['x-amz-security-token']).toBe(credential === WITH_TOKEN ? WITH_TOKEN.sessionToken : undefined);
    }
    expect(differences.slice(0, 3)).toEqual([]);
  });

  it('a different key, day, region or service gives a different signature (the cache of derived keys is keyed on each)', () => {
    const request = generated(7).request;
    const base = signAwsRequest(request, KEY, { region: 'us-east-1', service: 's3' }, NOW).signature;
    const others = [
      signAwsRequest(request, { ...KEY, secretAccessKey: `${KEY.secretAccessKey}x` }, { region: 'us-east-1', service: 's3' }, NOW),
      signAwsRequest(request, KEY, { region: 'us-east-1', service: 's3' }, new Date('2013-05-25T00:00:00Z')),
      signAwsRequest(request, KEY, { region: 'eu-west-1', service: 's3' }, NOW),
      signAwsRequest(request, KEY, { region: 'us-east-1', service: 'sqs' }, NOW),
    ].map((s) => s.signature);
    expect(new Set([base, ...others]).size).toBe(5);
  });

  it("a string to sign (an aws-chunked chunk's) is signed as smithy signs it", async () => {
    const text = 'AWS4-HMAC-SHA256-PAYLOAD\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\nseed\nempty\nhash';
    const ours = await stringSigner(KEY, { region: 'us-east-1', service: 's3' }, NOW)(text);
    const theirs = await smithy(KEY, 'us-east-1', 's3').sign(text, { signingDate: NOW, signingRegion: 'us-east-1', signingService: 's3' });
    expect(ours).toBe(theirs);
  });
});
