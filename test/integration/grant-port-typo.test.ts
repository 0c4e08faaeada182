// A grant for host:PORT when the agent's requests go to another port (issue 48): grants add says so,
// from the audit log's recent lines, instead of leaving the user with a certificate error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

describe('grants add with a port no recent request used', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy();
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('names the port the requests went to', async () => {
    // No grant yet: the request is tunnelled blind (the client does not trust the test upstream: it only has to get there).
    await runProcess('curl', ['-sS', '-o', '/dev/null', '-x', proxy.url, `https://api.example.test:${upstream.port}/`], { PATH: process.env['PATH'] ?? '' });
    await waitFor(() => proxy.auditLines().find((l) => l['decision'] === 'tunnel' && l['port'] === upstream.port), 'the tunnel line');
    const typo = upstream.port + 1;
    const r = await proxy.cli(['grants', 'add', 'local', '--type', 'bearer', '--domains', `api.example.test:${typo}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toContain(`recent requests to api.example.test went to port ${upstream.port}, not ${typo}: this grant will not match them`);
    // The right port: nothing to say.
    const right = await proxy.cli(['grants', 'add', 'right', '--type', 'bearer', '--domains', `api.example.test:${upstream.port}`]);
    expect(right.code, right.stderr).toBe(0);
    expect(right.stdout + right.stderr).not.toContain('recent requests to');
  });
});
