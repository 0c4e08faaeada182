import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

// Issue 89: what an ancestor's allow rule asks on the way, a purpose (require_purpose) or a
// person's yes (approve: human), a child's request asks too. A child with no rules of its own must
// not walk past a hold its parent is held to. Curl through the real proxy to a real loopback upstream.

const HOST = 'api.example.test';
const LEAD_KEY = 'lead-key-holds-0123456789';

interface Curl {
  status: number;
  body: string;
}

describe('delegation: an ancestor holds and asks for purposes on its child too', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let childUrl: string;

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      env: { LEAD_KEY },
      config: {
        agents: {
          lead: {
            key: 'env:LEAD_KEY',
            grants: ['github'],
            rules: [
              { grant: 'github', methods: ['GET'], paths: ['/echo'] },
              { grant: 'github', methods: ['POST'], paths: ['/pay/**'], approve: 'human', approval: { wait: 0 } },
              { grant: 'github', methods: ['GET'], paths: ['/why/**'], require_purpose: true },
            ],
          },
        },
      },
      grants: [{ id: 'github', type: 'bearer', domains: [HOST], secret: CANARY }],
    });
    const minted = await proxy.cli(['agents', 'delegate', 'lead', '--name', 'worker', '--json']);
    expect(minted.stderr).toBe('');
    childUrl = (JSON.parse(minted.stdout) as { proxy_url: string }).proxy_url;
    await waitForAsync(async () => ((await curl(childUrl, 'GET', '/echo')).status === 200 ? true : undefined), 'the child to be served');
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const leadUrl = () => `http://lead:${LEAD_KEY}@127.0.0.1:${proxy.port}`;
  const curl = async (proxyUrl: string, method: string, path: string, headers: string[] = []): Promise<Curl> => {
    const args = ['-sS', '-w', '\n%{http_code}', '-X', method, '--proxy-header', 'Connection: close'];
    for (const h of headers) args.push('-H', h);
    if (method === 'POST') args.push('--data', '{"amount":5}');
    const result = await runProcess(
      'curl',
      [...args, `https://${HOST}:${upstream.port}${path}`],
      cleanEnv({ HTTPS_PROXY: proxyUrl, CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    const lines = result.stdout.split('\n');
    return { status: Number(lines.at(-1)), body: lines.slice(0, -1).join('\n') };
  };

  it("holds the child's request where the parent's rule wants a person's yes, as it holds the parent's", async () => {
    const seen = upstream.seen.length;
    const parent = await curl(leadUrl(), 'POST', '/pay/invoice-1');
    expect(parent.status).toBe(403);
    expect(JSON.parse(parent.body)).toMatchObject({ error: { code: 'approval_required' } });
    const child = await curl(childUrl, 'POST', '/pay/invoice-1');
    expect(child.status).toBe(403);
    expect(JSON.parse(child.body)).toMatchObject({ error: { code: 'approval_required' } });
    expect(child.body).not.toContain(CANARY);
    // Neither went upstream.
    expect(upstream.seen.length).toBe(seen);
    const line = await waitForAsync(
      async () => proxy.auditLines().find((l) => l['agent'] === 'worker' && l['code'] === 'approval_required'),
      "the child's held line",
    );
    expect(line).toMatchObject({ chain: ['lead', 'worker'], approval: { outcome: 'required' } });
  });

  it("asks the child for a purpose where the parent's rule requires one", async () => {
    const bare = await curl(childUrl, 'GET', '/why/this');
    expect(bare.status).toBe(400);
    expect(JSON.parse(bare.body)).toMatchObject({ error: { code: 'purpose_required' } });
    const said = await curl(childUrl, 'GET', '/why/this', ['X-Keyway-Purpose: checking the invoice']);
    expect(said.status).toBe(200);
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}`);
  });
});
