import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { tlsThroughProxy } from '../helpers/http2-client.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// Refusal budgets against unauthenticated floods from many client addresses (issue 21 review): any
// local process may use any source address in 127.0.0.0/8.

let proxy: TestProxy | undefined;
let upstream: TestUpstream | undefined;
afterEach(async () => {
  await proxy?.stop();
  await upstream?.close();
  proxy = undefined;
  upstream = undefined;
});

/** A plain request `target` on its own connection from `localAddress`, with no proxy credentials. */
function plainFrom(port: number, target: string, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, localAddress, agent: false, method: 'GET', path: target, timeout: 5_000 });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('no answer')));
    req.on('error', reject);
    req.end();
  });
}

describe('refusal budget: unauthenticated floods from many loopback addresses', () => {
  it("cannot make another agent's refusal anonymous (a line naming the agent and path stays)", async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      env: { VICTIM_KEY: 'victim-agent-key' },
      config: { agents: { victim: { key: 'env:VICTIM_KEY', rules: [{ grant: 'api', methods: ['GET'], paths: ['/echo'] }] } } },
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY }],
    });
    // Any local process may use any source address in 127.0.0.0/8: 50 "clients", each naming 20
    // hosts in a refusal made before authentication (https:// sent as a plain request): 1000 kinds.
    const port = proxy.port;
    for (let batch = 0; batch < 5; batch++) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, j) => {
          const address = `127.0.1.${batch * 10 + j + 1}`;
          for (let h = 0; h < 20; h++) expect(await plainFrom(port, `https://h${h}.flood.test/`, address)).toBe(400);
        }),
      );
    }
    const authority = `api.example.test:${upstream.port}`;
    const tls = await tlsThroughProxy(proxy.port, authority, proxy.caPath, { alpn: ['http/1.1'], proxyAuth: 'victim:victim-agent-key' });
    tls.write(`GET /victim-denied HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`);
    let answer = '';
    for await (const chunk of tls) answer += (chunk as Buffer).toString('latin1');
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    await proxy.stop();
    const victim = proxy.auditLines().filter((l) => l['code'] === 'policy_denied');
    expect(victim).toHaveLength(1);
    expect(victim[0]).toMatchObject({ agent: 'victim', path: '/victim-denied', host: 'api.example.test' });
  });
});
