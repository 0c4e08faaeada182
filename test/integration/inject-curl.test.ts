import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

describe('curl through keyway', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      grants: [{ id: 'github', type: 'bearer', domains: ['api.example.test'], secret: CANARY }],
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('injects the grant on an allowed host and replaces what the client sent', async () => {
    const before = upstream.seen.length;
    const result = await runProcess(
      'curl',
      ['-sS', '--fail-with-body', '-H', 'Authorization: Bearer client-own-token', `https://api.example.test:${upstream.port}/echo?x=1`],
      cleanEnv({ HTTPS_PROXY: proxy.url, CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    expect(result.stderr).toBe('');
    // What the upstream received: the grant, in place of the client's own token.
    expect(upstream.seen).toHaveLength(before + 1);
    const seen = upstream.seen.at(-1);
    expect(seen?.url).toBe('/echo?x=1');
    expect(seen?.headers.authorization).toBe(`Bearer ${CANARY}`);
    expect(seen?.headers['proxy-authorization']).toBeUndefined();
    // What the client got back: the upstream's echo, with the secret redacted by the leak guard.
    const body = JSON.parse(result.stdout);
    expect(body.headers.authorization).toBe('Bearer [redacted by keyway]');
    expect(body.path).toBe('/echo?x=1');
    expect(result.stdout).not.toContain(CANARY);
    expect(result.stdout).not.toContain('client-own-token');
  });
});
