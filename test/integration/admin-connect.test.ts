// A proxy URL pointed at the admin port by mistake (issue 48): the CONNECT gets a 400 naming the
// proxy's address, not a cut connection ("Proxy CONNECT aborted").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';

describe('the admin listener, asked to CONNECT', () => {
  let proxy: TestProxy;
  beforeAll(async () => {
    proxy = await startProxy();
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it("answers 400, naming the proxy's address", async () => {
    const admin = proxy.running.adminAddress!;
    const r = await runProcess('curl', ['-sS', '-x', `http://127.0.0.1:${admin.port}`, 'https://api.example.test/'], { PATH: process.env['PATH'] ?? '' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/CONNECT tunnel failed, response 400/);
    // The body, read by a raw CONNECT: the fix is named.
    const raw = await runProcess('curl', ['-sS', '-i', '-X', 'CONNECT', '--request-target', 'api.example.test:443', `http://127.0.0.1:${admin.port}/`], {
      PATH: process.env['PATH'] ?? '',
    });
    expect(raw.stdout).toContain('HTTP/1.1 400 Bad Request');
    expect(raw.stdout).toContain(`this is keyway's admin API, not its proxy: point HTTPS_PROXY at http://127.0.0.1:${proxy.port}`);
  });
});
