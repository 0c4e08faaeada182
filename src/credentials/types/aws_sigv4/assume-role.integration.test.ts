// assume_role on an aws_sigv4 grant (issue 24): keyway calls STS AssumeRole with the stored
// long-term key, signs the agent's requests with the role's temporary credentials and session
// token, and gets new ones before Expiration, once however many requests wait. The STS double
// checks AssumeRole's signature against the long-term key; the S3 front accepts only the temporary
// credentials the double issued, each with its session token. Time moves on keyway's token clock
// (and the double's, which issues Expiration and checks the signing date by it), not by sleeping.
import { Agent as HttpsAgent } from 'node:https';
import { readFileSync } from 'node:fs';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { jsS3Client } from '../../../../test/helpers/aws-clients.ts';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient } from '../../../../test/helpers/admin-api.ts';
import { CANARY } from '../../../../test/helpers/fixtures.ts';
import { startProxy, TEST_HOSTS, type TestProxy } from '../../../../test/helpers/keyway.ts';
import { findLeak } from '../../../../test/helpers/leak-canary.ts';
import { delta, parseMetrics } from '../../../../test/helpers/metrics-text.ts';
import { freePort } from '../../../../test/helpers/ports.ts';
import { type S3Front, type SeenS3Request, startS3Front } from '../../../../test/helpers/s3-front.ts';
import { type StsDouble, startStsDouble } from '../../../../test/helpers/sts-double.ts';
import { AWS_TEST_HOSTS } from '../../../../test/helpers/test-leaf.ts';
import { waitFor } from '../../../../test/helpers/wait.ts';

const LONG_TERM = { accessKeyId: 'AKIAKEYWAYROLE000001', secretAccessKey: `${CANARY}-long-term/kw+2c8e4a1f9b7d` };
const PLACEHOLDER = { accessKeyId: 'AKIAKEYWAYPLACEHOLDR', secretAccessKey: 'keyway-placeholder-secret-access-key00' };
const ROLE = 'arn:aws:iam::123456789012:role/keyway-agent';
const BUCKET = 'roles';
const MINUTE = 60_000;
// STS writes Expiration to the second.
const wholeSeconds = (date: Date) => new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString();

describe('aws_sigv4 with assume_role: requests signed as the role, its credentials refreshed once per expiry', () => {
  let sts: StsDouble;
  let front: S3Front;
  let proxy: TestProxy;
  let agent: HttpsAgent;
  let s3: S3Client;
  let raw: ProxyAgent;
  let endpoint: string;
  let ahead = 0;
  const clock = () => Date.now() + ahead;
  const outputs: string[] = [];

  beforeAll(async () => {
    sts = await startStsDouble({ keys: [LONG_TERM], now: clock });
    front = await startS3Front({ keys: () => sts.issued, buckets: [BUCKET], region: 'us-east-1' });
    endpoint = `https://s3.us-east-1.amazonaws.com:${front.port}`;
    const closed = await freePort();
    proxy = await startProxy({
      env: { AWS_LONG_TERM: JSON.stringify(LONG_TERM) },
      tokenClock: clock,
      config: {
        proxy: { hosts: Object.fromEntries([...TEST_HOSTS, ...AWS_TEST_HOSTS].map((h) => [h, '127.0.0.1'])) },
        grants: {
          role: {
            type: 'aws_sigv4',
            domains: ['s3.us-east-1.amazonaws.com'],
            secret: 'env:AWS_LONG_TERM',
            assume_role: { role_arn: ROLE, duration: '15m', external_id: 'kw-external-1', session_name: 'keyway-test' },
            sts_endpoint: sts.url,
          },
          // STS at an address nothing listens on.
          'sts-unreachable': {
            type: 'aws_sigv4',
            domains: ['s3.eu-west-1.amazonaws.com'],
            secret: 'env:AWS_LONG_TERM',
            assume_role: { role_arn: ROLE },
            sts_endpoint: `https://sts.us-east-1.amazonaws.com:${closed}`,
          },
        },
      },
    });
    agent = new HttpsAgent({ proxyEnv: { HTTPS_PROXY: proxy.url }, ca: readFileSync(proxy.bundlePath, 'utf8'), keepAlive: true } as never);
    s3 = jsS3Client(endpoint, PLACEHOLDER, { agent });
    raw = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });

  afterAll(async () => {
    s3?.destroy();
    agent?.destroy();
    await raw?.close();
    const audit = readFileSync(proxy.auditPath, 'utf8');
    const secrets = [LONG_TERM.secretAccessKey, ...sts.issued.flatMap((c) => [c.secretAccessKey, c.sessionToken])];
    for (const text of [audit, ...outputs, ...proxy.logs]) {
      for (const secret of secrets) expect(findLeak(text, secret), 'a secret in an output').toBeUndefined();
    }
    for (const seen of front.seen) expect(JSON.stringify(seen.headers)).not.toContain(PLACEHOLDER.accessKeyId);
    await proxy?.stop();
    await Promise.all([front?.close(), sts?.close()]);
  });

  async function watch(action: () => Promise<unknown>): Promise<SeenS3Request[]> {
    const from = front.seen.length;
    await action();
    return front.seen.slice(from);
  }
  /** Every request reached s3rver signed with the newest temporary key and its session token. */
  const signedAsRole = (seen: SeenS3Request[]) =>
    seen.length > 0 && seen.every((r) => r.refused === undefined && r.securityToken && r.accessKeyId === sts.issued.at(-1)?.accessKeyId);
  const moveTo = (at: number) => {
    ahead = at - Date.now();
  };

  async function call(path: string, host = endpoint, headers: Record<string, string> = {}) {
    const res = await request(`${host}${path}`, { dispatcher: raw, method: 'GET', headers });
    const text = await res.body.text();
    outputs.push(text, JSON.stringify(res.headers));
    return { status: res.statusCode, code: res.headers['x-keyway-error'], text };
  }

  it('the JS SDK puts and gets as the role: one AssumeRole signed with the stored key, the front sees only the temporary key and its token', async () => {
    const seen = await watch(async () => {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'a.txt', Body: 'signed as a role' }));
      expect(await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a.txt' }))).Body?.transformToString()).toBe('signed as a role');
    });
    expect(sts.calls).toHaveLength(1);
    expect(sts.calls[0]).toMatchObject({
      roleArn: ROLE,
      roleSessionName: 'keyway-test',
      durationSeconds: 900,
      externalId: 'kw-external-1',
      accessKeyId: LONG_TERM.accessKeyId,
      region: 'us-east-1',
    });
    expect(signedAsRole(seen)).toBe(true);
    expect(seen.every((r) => r.signedHeaders.includes('x-amz-security-token'))).toBe(true);
    // Audit lines are written as responses end: wait for both.
    const lines = await waitFor(() => {
      const found = proxy.auditLines().filter((l) => l['grant'] === 'role' && l['decision'] === 'inject');
      return found.length >= 2 ? found : undefined;
    }, 'two audit lines');
    expect(lines.map((l) => [l['role'], l['refreshed'], l['signed']])).toEqual([
      [ROLE, true, 'sigv4'],
      [ROLE, false, 'sigv4'],
    ]);
    const shown = await proxy.cli(['grants', 'show', 'role', '--json']);
    outputs.push(shown.stdout, shown.stderr);
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ role: ROLE, role_expires_at: wholeSeconds(sts.issued[0]!.expiration) });
    const words = await proxy.cli(['grants', 'show', 'role']);
    outputs.push(words.stdout, words.stderr);
    expect(words.stdout).toMatch(/AWS role:\s+arn:aws:iam::123456789012:role\/keyway-agent/);
    expect(words.stdout).toMatch(/Role credentials expire:\s+\d{4}-/);
  });

  it('keyway refresh and POST /api/grants/{grant}/refresh assume the role now (one STS call each), counted in /metrics; STS failing is token_refresh_failed', async () => {
    // Second in the file, while the clock is the real one: the command line signs its AssumeRole
    // with the real clock, as the STS double checks it.
    expect(ahead).toBe(0);
    const admin = adminClient(proxy);
    const scrape = async () => parseMetrics((await admin.call('GET', '/metrics')).text);
    const before = await scrape();
    const calls = sts.calls.length;
    const cli = await proxy.cli(['refresh', 'role']);
    outputs.push(cli.stdout, cli.stderr);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toBe(`refreshed grant role; token expires ${wholeSeconds(sts.issued.at(-1)!.expiration)}\n`);
    expect(sts.calls.length - calls).toBe(1);
    // The running proxy signs with what the command stored, without a call of its own.
    let seen: SeenS3Request[] = [];
    for (let i = 0; i < 20 && seen.at(-1)?.accessKeyId !== sts.issued.at(-1)!.accessKeyId; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 250));
      seen = await watch(() => call(`/${BUCKET}/a.txt`));
    }
    expect(signedAsRole(seen)).toBe(true);
    expect(sts.calls.length - calls).toBe(1);

    const api = await admin.call('POST', '/api/grants/role/refresh');
    outputs.push(api.text);
    expect(api.status, api.text).toBe(200);
    expect(api.body).toMatchObject({ grant: { id: 'role', role: ROLE }, token_expires_at: wholeSeconds(sts.issued.at(-1)!.expiration) });
    expect(sts.calls.length - calls).toBe(2);
    const after = await scrape();
    // The API's call ran in the proxy: its STS call and the credentials it saved are in /metrics.
    expect(delta(before, after, 'keyway_token_requests_total', { grant: 'role', result: 'ok' })).toBe(1);
    expect(delta(before, after, 'keyway_token_refreshes_total', { grant: 'role' })).toBe(1);

    sts.setFailure({ status: 503, code: 'ServiceUnavailable', message: 'try later' });
    try {
      const failed = await proxy.cli(['refresh', 'role']);
      outputs.push(failed.stdout, failed.stderr);
      expect(failed.code).not.toBe(0);
      expect(failed.stderr).toContain(`STS ${sts.url} refused AssumeRole for ${ROLE} (ServiceUnavailable, HTTP 503)`);
      const failedApi = await admin.call('POST', '/api/grants/role/refresh');
      outputs.push(failedApi.text);
      expect(failedApi.status).toBe(502);
      expect((failedApi.body as { error: { code: string } }).error.code).toBe('token_refresh_failed');
      expect(delta(after, await scrape(), 'keyway_token_requests_total', { grant: 'role', result: 'error' })).toBe(1);
    } finally {
      sts.setFailure(undefined);
    }
  });

  it('before Expiration: untouched until 5 minutes before it, then one AssumeRole and the new key', async () => {
    const expiration = sts.issued.at(-1)!.expiration.getTime();
    const calls = sts.calls.length;
    const issued = sts.issued.length;
    moveTo(expiration - 6 * MINUTE);
    await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a.txt' }));
    expect(sts.calls).toHaveLength(calls);
    moveTo(expiration - 4 * MINUTE);
    const stamp = new Date().toISOString();
    const seen = await watch(() => s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a.txt' })));
    expect(sts.calls).toHaveLength(calls + 1);
    expect(sts.issued).toHaveLength(issued + 1);
    expect(signedAsRole(seen)).toBe(true);
    const line = await waitFor(
      () => proxy.auditLines().find((l) => l['grant'] === 'role' && l['refreshed'] === true && String(l['ts']) >= stamp),
      "the refreshing request's line",
    );
    expect(line).toMatchObject({ grant: 'role', decision: 'inject', role: ROLE, signed: 'sigv4' });
  });

  it('200 concurrent requests on expired role credentials: exactly one AssumeRole, every request signed with its answer', { timeout: 90_000 }, async () => {
    moveTo(sts.issued.at(-1)!.expiration.getTime() + MINUTE);
    sts.setDelay(300);
    const calls = sts.calls.length;
    const linesBefore = proxy.auditLines().length;
    // 200 connections at once through keyway, each a CONNECT and a TLS handshake, on a shared 2-core
    // machine: a patient client, so the test measures single flight and not the machine's load.
    const patient = new S3Client({
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      credentials: PLACEHOLDER,
      maxAttempts: 1,
      requestHandler: { httpsAgent: agent, connectionTimeout: 60_000, requestTimeout: 60_000 },
    });
    try {
      const seen = await watch(() =>
        Promise.all(
          Array.from({ length: 200 }, async () => {
            const got = await patient.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a.txt' }));
            expect(await got.Body?.transformToString()).toBe('signed as a role');
          }),
        ),
      );
      expect(sts.calls.length - calls).toBe(1);
      expect(seen).toHaveLength(200);
      expect(signedAsRole(seen)).toBe(true);
      // Only the request that made the call says `refreshed`; the 199 that joined it do not.
      const lines = await waitFor(() => {
        const mine = proxy
          .auditLines()
          .slice(linesBefore)
          .filter((l) => l['grant'] === 'role' && l['decision'] === 'inject');
        return mine.length >= 200 ? mine : undefined;
      }, 'the 200 audit lines');
      expect(lines.filter((l) => l['refreshed'] === true)).toHaveLength(1);
    } finally {
      patient.destroy();
      sts.setDelay(0);
    }
  });

  it('STS failing inside the refresh window: credentials a minute or more from Expiration still sign; closer than that, 502', async () => {
    const current = sts.issued.at(-1)!;
    const expiration = current.expiration.getTime();
    moveTo(expiration - 3 * MINUTE);
    sts.setFailure({ status: 500, code: 'InternalFailure', message: 'down' });
    const calls = sts.calls.length;
    try {
      const seen = await watch(() => s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a.txt' })));
      expect(sts.calls.length - calls).toBe(1);
      expect(seen.map((r) => [r.refused, r.accessKeyId])).toEqual([[undefined, current.accessKeyId]]);
      moveTo(expiration - 30_000);
      const late = await watch(async () => {
        expect(await call(`/${BUCKET}/a.txt`)).toMatchObject({ status: 502, code: 'token_refresh_failed' });
      });
      expect(late).toEqual([]);
      expect(sts.calls.length - calls).toBe(2);
    } finally {
      sts.setFailure(undefined);
    }
    // STS back, past the backoff: new credentials, and the failures forgotten.
    ahead += 2_100;
    const back = await watch(() => s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a.txt' })));
    expect(signedAsRole(back)).toBe(true);
    expect(back[0]!.accessKeyId).not.toBe(current.accessKeyId);
  });

  it('STS failing (5xx, a 200 without credentials, unreachable): 502 token_refresh_failed with the reason, nothing reaches the front, backoff', async () => {
    moveTo(sts.issued.at(-1)!.expiration.getTime() + MINUTE);
    sts.setFailure({ status: 503, code: 'ServiceUnavailable', message: 'try later' });
    const calls = sts.calls.length;
    try {
      const seen = await watch(async () => {
        const first = await call(`/${BUCKET}/a.txt`);
        expect(first).toMatchObject({ status: 502, code: 'token_refresh_failed' });
        expect(JSON.parse(first.text).error.message).toBe(`STS ${sts.url} refused AssumeRole for ${ROLE} (ServiceUnavailable, HTTP 503)`);
        // Within the backoff: refused again without another call to STS.
        expect(await call(`/${BUCKET}/a.txt`)).toMatchObject({ status: 502, code: 'token_refresh_failed' });
        expect(sts.calls.length - calls).toBe(1);
        ahead += 1_100;
        sts.setFailure({ status: 200, code: 'NotCredentials', message: 'garbage' });
        const garbage = await call(`/${BUCKET}/a.txt`);
        expect(garbage).toMatchObject({ status: 502, code: 'token_refresh_failed' });
        expect(JSON.parse(garbage.text).error.message).toBe(`STS ${sts.url} answered AssumeRole without Credentials`);
        const unreachable = await call(`/${BUCKET}/a.txt`, endpoint.replace('us-east-1', 'eu-west-1'));
        expect(unreachable).toMatchObject({ status: 502, code: 'token_refresh_failed' });
        expect(JSON.parse(unreachable.text).error.message).toMatch(/^STS https:\/\/sts\.us-east-1\.amazonaws\.com:\d+ could not be reached \(ECONNREFUSED\)$/);
      });
      expect(seen).toEqual([]);
      await waitFor(() => (proxy.auditLines().filter((l) => l['code'] === 'token_refresh_failed').length >= 4 ? true : undefined), 'four audit lines');
      // Past the backoff, with STS back: signed again.
      sts.setFailure(undefined);
      ahead += 2_100;
      const back = await watch(() => s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a.txt' })));
      expect(signedAsRole(back)).toBe(true);
    } finally {
      sts.setFailure(undefined);
    }
  });

  it('a grant added through the admin API takes assume_role too: listed with its role, signing as it; a bad ARN is refused by name', async () => {
    const admin = adminClient(proxy);
    const added = await admin.call('POST', '/api/grants', {
      id: 'api-role',
      type: 'aws_sigv4',
      // Beside the config's grant on this host: a request names which (X-Keyway-Grant).
      domains: ['s3.us-east-1.amazonaws.com'],
      assume_role: { role_arn: ROLE, duration: '30m', session_name: 'from-api' },
      sts_endpoint: sts.url,
      secret: LONG_TERM,
    });
    outputs.push(added.text);
    expect(added.status, added.text).toBe(201);
    expect(added.body).toMatchObject({ grant: { id: 'api-role', role: ROLE, role_expires_at: null } });
    moveTo(Date.now());
    const calls = sts.calls.length;
    const seen = await watch(async () => {
      const listed = await call(`/${BUCKET}?list-type=2`, endpoint, { 'x-keyway-grant': 'api-role' });
      expect(listed.status, listed.text).toBe(200);
    });
    expect(sts.calls.slice(calls)).toMatchObject([{ roleArn: ROLE, roleSessionName: 'from-api', durationSeconds: 1800 }]);
    expect(signedAsRole(seen)).toBe(true);
    const shown = await admin.call('GET', '/api/grants/api-role');
    outputs.push(shown.text);
    expect(shown.body).toMatchObject({ grant: { role: ROLE, role_expires_at: wholeSeconds(sts.issued.at(-1)!.expiration) } });
    const bad = await admin.call('POST', '/api/grants', {
      id: 'bad-role',
      type: 'aws_sigv4',
      domains: ['sts.amazonaws.com'],
      assume_role: { role_arn: 'admin' },
    });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('assume_role.role_arn: expected a role ARN');
  });
});
