// A client that does not trust keyway's CA (issue 48) ends the handshake with an alert: it used to
// leave no trace in keyway. Now the audit log has a line saying so, with the fix; and a client that
// trusts the CA leaves none of these.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

describe("a client that does not trust keyway's CA", () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({ grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY }] });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('is recorded (client_tls_failed, with the fix); one that trusts it is not', async () => {
    const url = `https://api.example.test:${upstream.port}/echo`;
    // curl with the system CAs only: keyway's certificate is refused by the client.
    const untrusting = await runProcess('curl', ['-sS', '-x', proxy.url, url], { PATH: process.env['PATH'] ?? '' });
    expect(untrusting.code).not.toBe(0);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['code'] === 'client_tls_failed'), 'the line');
    expect(line).toMatchObject({ decision: 'deny', host: 'api.example.test', method: 'CONNECT' });
    expect(String(line['message'])).toMatch(/does not trust keyway's CA/);
    expect(String(line['hint'])).toContain('eval "$(keyway env)"');
    const trusting = await runProcess('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', proxy.caPath, '-x', proxy.url, url], {
      PATH: process.env['PATH'] ?? '',
    });
    expect(trusting.stdout).toBe('200');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(proxy.auditLines().filter((l) => l['code'] === 'client_tls_failed')).toHaveLength(1);
  });
});
