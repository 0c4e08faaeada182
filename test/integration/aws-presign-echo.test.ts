// A presigned SigV4 URL that keyway signs is a credential for as long as it lives: an upstream that
// echoes the request back (a debug endpoint, an error page, a log viewer) would hand it to the agent,
// who could then use it without keyway. keyway caps its lifetime (the grant's max_presign_expiry,
// 15 minutes by default, whatever X-Amz-Expires the agent asked for) and redacts its own signature in
// the answer (issue 34, low finding). The AWS SDK's presigner makes the agent's URL.
import { readFileSync } from 'node:fs';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const REAL = { accessKeyId: 'AKIAKEYWAYREAL000002', secretAccessKey: `${CANARY}-aws-secret/kw+echo0000001` };
const PLACEHOLDER = { accessKeyId: 'AKIAKEYWAYPLACEHOLDR', secretAccessKey: 'keyway-placeholder-secret-access-key00' };
const WEEK = 7 * 24 * 3600;

describe('presigned URLs keyway signs: a short life, and never echoed back', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let dispatcher: ProxyAgent;
  const outputs: string[] = [];

  beforeAll(async () => {
    // Echoes the request line: the URL keyway sent, signature and all.
    upstream = await startUpstream({
      handler: (req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`you asked for ${req.url}`);
        return true;
      },
    });
    proxy = await startProxy({
      env: { AWS_REAL: JSON.stringify(REAL) },
      config: {
        grants: {
          // The scope from the grant: these test host names are not AWS's.
          s3: { type: 'aws_sigv4', domains: ['api.example.test'], region: 'us-east-1', service: 's3', secret: 'env:AWS_REAL' },
          short: { type: 'aws_sigv4', domains: ['other.example.test'], region: 'us-east-1', service: 's3', secret: 'env:AWS_REAL', max_presign_expiry: '60s' },
        },
      },
    });
    dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await dispatcher?.close();
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...outputs, ...proxy.logs]) expect(findLeak(text, REAL.secretAccessKey)).toBeUndefined();
    await proxy?.stop();
    await upstream?.close();
  });

  async function presignedThroughKeyway(host: string, expiresIn: number) {
    const s3 = new S3Client({ region: 'us-east-1', endpoint: `https://${host}:${upstream.port}`, forcePathStyle: true, credentials: PLACEHOLDER });
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'bkt', Key: 'report.csv' }), { expiresIn });
    s3.destroy();
    const res = await request(url, { dispatcher });
    const text = await res.body.text();
    outputs.push(text);
    const sent = upstream.seen.at(-1)!;
    return { status: res.statusCode, text, sent: new URL(sent.url, 'https://x').searchParams };
  }

  it('a week asked for is signed for 15 minutes; the signature in the echo is redacted', async () => {
    const r = await presignedThroughKeyway('api.example.test', WEEK);
    expect(r.status).toBe(200);
    expect(r.sent.get('X-Amz-Expires')).toBe('900');
    expect(r.sent.get('X-Amz-Credential')).toContain(REAL.accessKeyId);
    const signature = r.sent.get('X-Amz-Signature')!;
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
    expect(r.text).not.toContain(signature);
    expect(r.text).toContain('X-Amz-Signature=[redacted by keyway]');
  });

  it('a shorter life asked for is kept; the grant may set a shorter cap', async () => {
    expect((await presignedThroughKeyway('api.example.test', 120)).sent.get('X-Amz-Expires')).toBe('120');
    const capped = await presignedThroughKeyway('other.example.test', 3600);
    expect(capped.sent.get('X-Amz-Expires')).toBe('60');
    expect(capped.text).not.toContain(capped.sent.get('X-Amz-Signature')!);
  });
});
