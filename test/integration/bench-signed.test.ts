// The bench's s8/s9 (what SigV4 signing costs) on real processes: keyway run as the bench runs it,
// with the bench's aws_sigv4 grant, signs the unsigned GETs and hashed uploads the bench sends; the
// bench upstream counts keyway's signatures and verifies a sample with AWS's own signer, and it
// refuses (and counts) what keyway did not sign or signed wrong.
import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { afterEach, describe, expect, it } from 'vitest';
import { awsHost, newBenchAwsKey } from '../../bench/aws-host.ts';
import { keywayRoute, type Tally } from '../../bench/clients.ts';
import { startKeywayChild } from '../../bench/keyway-child.ts';
import { benchHosts, keywayBenchOptions, newOAuthClient } from '../../bench/keyway-bench.ts';
import { processCpuMs } from '../../bench/proc.ts';
import { AWS_HOST, QUICK_PLAN, type Context } from '../../bench/scenarios.ts';
import { s8SignedGets, s9SignedUploads } from '../../bench/signed.ts';
import { startBenchUpstream } from '../../bench/upstream.ts';
import { TLS_FIXTURES } from '../helpers/fixtures.ts';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

describe('bench s8/s9: keyway on the aws_sigv4 grant against the bearer grant', () => {
  it('keyway signs every request with the bench key; sampled signatures and body hashes verify; both grants are measured', async () => {
    const secret = `kwb-test-${randomBytes(16).toString('hex')}`;
    const key = newBenchAwsKey();
    const aws = awsHost(AWS_HOST, key);
    const upstream = await startBenchUpstream(secret, undefined, aws);
    cleanup.push(() => upstream.close());
    const oauth = newOAuthClient();
    const child = await startKeywayChild(
      keywayBenchOptions({ plan: QUICK_PLAN, secret, hosts: benchHosts(QUICK_PLAN), oauth, tokenUrl: 'https://127.0.0.1:9/token', nodeArgs: [], aws: key }),
    );
    cleanup.push(() => child.stop());
    const keyway = keywayRoute(child.url, child.caPem, TLS_FIXTURES.ca, () => processCpuMs(child.pid));
    const tally: Tally = { badStatus: 0, badBody: 0 };
    const ctx: Context = { upstreamPort: upstream.port, tally, deadline: performance.now() + 30_000, warmupMs: 200 };

    // Uploads first: the first signed requests are the ones verified in full, body hash included.
    const s9 = await s9SignedUploads(keyway, ctx, { concurrency: 2, bounds: { maxCount: 6, maxMs: 1500 } }, 2);
    const s8 = await s8SignedGets(keyway, ctx, { connections: 8, bounds: { maxCount: 200, maxMs: 1500 } }, 2);
    await aws.settled();

    expect(tally).toEqual({ badStatus: 0, badBody: 0 });
    for (const round of [...s8, ...s9]) {
      for (const run of [round.bearer, round.sigv4]) {
        expect(run.seconds).toBeGreaterThan(0);
        // Measured (read from /proc in clock ticks of 10 ms: a run of six uploads can take less than one).
        expect(Number.isFinite(run.cpuMs)).toBe(true);
        expect(run.cpuMs).toBeGreaterThanOrEqual(0);
      }
    }
    const sigv4Requests = s8.reduce((n, r) => n + r.sigv4.requests, 0) + s9.reduce((n, r) => n + r.sigv4.transfers, 0);
    expect(sigv4Requests).toBeGreaterThan(0);
    // The bearer runs went to the main host with the bearer token, the SigV4 runs to the SigV4 host signed.
    expect(upstream.counts.withoutCredential).toBe(0);
    expect(upstream.counts.viaKeyway).toBeGreaterThanOrEqual(s8.reduce((n, r) => n + r.bearer.requests, 0));
    expect(aws.counts.refused).toBe(0);
    expect(aws.counts.signed).toBeGreaterThanOrEqual(sigv4Requests);
    expect(aws.counts.verifyFailed).toBe(0);
    expect(aws.counts.verified).toBeGreaterThanOrEqual(8);
  });

  it("the SigV4 host refuses a request without keyway's signature, and a sampled forged one fails verification", async () => {
    const key = newBenchAwsKey();
    const aws = awsHost(AWS_HOST, key);
    const upstream = await startBenchUpstream(`kwb-test-${randomBytes(16).toString('hex')}`, undefined, aws);
    cleanup.push(() => upstream.close());
    const amzDate = new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
    const forged = `AWS4-HMAC-SHA256 Credential=${key.accessKeyId}/${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=${'0'.repeat(64)}`;
    const emptySha = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

    expect(await get(upstream.port, {})).toBe(401);
    expect(await get(upstream.port, { authorization: `Bearer ${key.secretAccessKey}` })).toBe(401);
    expect(await get(upstream.port, { authorization: forged, 'x-amz-date': amzDate, 'x-amz-content-sha256': emptySha })).toBe(200);
    await aws.settled();

    expect(aws.counts).toMatchObject({ total: 3, refused: 2, signed: 1, verified: 0, verifyFailed: 1 });
    expect(aws.counts.firstProblem).toBe('GET /small: not signed by keyway with the bench key (Authorization: none)');
  });
});

/** A GET to the SigV4 host straight at the upstream (no proxy), with `headers`; resolves to the status. */
function get(port: number, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', servername: AWS_HOST, port, path: '/small', headers: { host: `${AWS_HOST}:${port}`, ...headers }, ca: TLS_FIXTURES.ca },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}
