// A proxy URL pointed at the admin port by mistake (issue 48): the CONNECT gets a 400 naming the
// proxy's address, not a cut connection ("Proxy CONNECT aborted").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPythonWithRequests } from '../helpers/clients.ts';
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
    expect(raw.stdout).toContain("HTTP/1.1 400 this is keyway's admin API");
    expect(raw.stdout).toContain(`this is keyway's admin API, not its proxy: point HTTPS_PROXY at http://127.0.0.1:${proxy.port}`);
  });

  // Clients show the status line of a refused CONNECT, never its body (issue 60): the fix must be
  // in the reason phrase. curl -v prints the line; Python's requests puts it in its ProxyError.
  it('says so in the reason phrase, which curl -v and Python requests show', async () => {
    const admin = proxy.running.adminAddress!;
    const reason = `this is keyway's admin API, not its proxy: point HTTPS_PROXY at http://127.0.0.1:${proxy.port} (keyway env prints the variables)`;
    const verbose = await runProcess('curl', ['-sS', '-v', '-x', `http://127.0.0.1:${admin.port}`, 'https://api.example.test/'], {
      PATH: process.env['PATH'] ?? '',
    });
    expect(verbose.code).not.toBe(0);
    expect(verbose.stderr).toContain(`< HTTP/1.1 400 ${reason}`);
    const python = await findPythonWithRequests();
    if (python === undefined) return; // the curl line above is the standing check; requests is optional here
    const script =
      'import sys, requests\ntry:\n    requests.get("https://api.example.test/", proxies={"https": sys.argv[1]}, timeout=10)\nexcept Exception as e:\n    print(e)';
    const r = await runProcess(python, ['-c', script, `http://127.0.0.1:${admin.port}`], { PATH: process.env['PATH'] ?? '' });
    expect(r.stdout).toContain(`Tunnel connection failed: 400 ${reason}`);
  });
});
