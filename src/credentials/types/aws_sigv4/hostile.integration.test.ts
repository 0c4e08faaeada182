// A presigned SigV4 URL that keyway signs is a credential for as long as it lives: an upstream that
// echoes the request back (a debug endpoint, an error page, a log viewer) would hand it to the agent,
// who could then use it without keyway. keyway caps its lifetime (the grant's max_presign_expiry,
// 15 minutes by default, whatever X-Amz-Expires the agent asked for) and redacts its own signature in
// the answer (issue 34, low finding). The AWS SDK's presigner makes the agent's URL.
// And a name under amazonaws.com that anyone can rent (a load balancer's) is not read as an AWS
// service: keyway will not sign for it, so its owner never gets a signed request or a session token.
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../../../../test/helpers/fixtures.ts';
import { startProxy, TEST_HOSTS, type TestProxy } from '../../../../test/helpers/keyway.ts';
import { findLeak } from '../../../../test/helpers/leak-canary.ts';
import { mintTestLeaf } from '../../../../test/helpers/test-leaf.ts';
import { startUpstream, type TestUpstream } from '../../../../test/helpers/upstream.ts';
import { waitFor } from '../../../../test/helpers/wait.ts';

const REAL = { accessKeyId: 'AKIAKEYWAYREAL000002', secretAccessKey: `${CANARY}-aws-secret/kw+echo0000001`, sessionToken: `${CANARY}-session-token-0001` };
const ELB = 's3-abc-123.eu-west-1.elb.amazonaws.com';
const PLACEHOLDER = { accessKeyId: 'AKIAKEYWAYPLACEHOLDR', secretAccessKey: 'keyway-placeholder-secret-access-key00' };
const WEEK = 7 * 24 * 3600;

describe('presigned URLs keyway signs: a short life, and never echoed back', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let dispatcher: ProxyAgent;
  let elb: { port: number; seen: Array<Record<string, unknown>>; close(): Promise<void> };
  const outputs: string[] = [];

  beforeAll(async () => {
    // Echoes the request line: the URL keyway sent, signature and all.
    upstream = await startUpstream({
      handler: (req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`you asked for ${req.url}`);
        return true;
      },
    });
    elb = await startRentedHost();
    proxy = await startProxy({
      env: { AWS_REAL: JSON.stringify(REAL) },
      config: {
        proxy: { hosts: Object.fromEntries([...TEST_HOSTS, ELB].map((h) => [h, '127.0.0.1'])) },
        grants: {
          // The README's wide grant: every name under amazonaws.com.
          wide: { type: 'aws_sigv4', domains: ['*.amazonaws.com'], secret: 'env:AWS_REAL' },
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
    await elb?.close();
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

  it("a load balancer's name that reads like S3 (s3-abc-123.eu-west-1.elb) is not signed for: 400, and its owner sees nothing", async () => {
    const res = await request(`https://${ELB}:${elb.port}/bkt/key`, {
      dispatcher,
      headers: {
        authorization: `AWS4-HMAC-SHA256 Credential=${PLACEHOLDER.accessKeyId}/20260101/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00`,
        'x-amz-date': '20260101T000000Z',
      },
    });
    const text = await res.body.text();
    outputs.push(text);
    expect(res.statusCode).toBe(400);
    expect(res.headers['x-keyway-error']).toBe('signature_unsupported');
    expect(text).toContain("not one of AWS's own endpoint names");
    expect(elb.seen).toEqual([]);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['host'] === ELB), 'the audit line');
    expect(line).toMatchObject({ decision: 'deny', code: 'signature_unsupported', grant: 'wide' });
  });
});

/** An HTTPS server with a certificate for the load balancer's name, recording what reaches it. */
async function startRentedHost() {
  const seen: Array<Record<string, unknown>> = [];
  const server = createServer(mintTestLeaf([ELB]), (req, res) => {
    seen.push({ url: req.url, headers: req.headers });
    res.end('the owner of this name saw your request');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
