import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

// Issue 89: Cedar sees a delegated agent's chain. A policy on `principal in Agent::"lead"` reaches
// lead's children (the query carries its parents); one on `principal == Agent::"lead"` reaches them
// too, since each ancestor is judged for the child's request as itself (stage delegation). Driven
// with curl through the real proxy to a real loopback upstream.

const POLICY = `@id("lead-tree-no-delete")
forbid (principal in Agent::"lead", action, resource == Grant::"github")
when { context.method == "DELETE" };

@id("lead-itself-no-put")
forbid (principal == Agent::"lead", action, resource)
when { context.method == "PUT" };
`;

describe('delegation under Cedar policies', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let childUrl: string;

  beforeAll(async () => {
    upstream = await startUpstream();
    const home = makeHome();
    mkdirSync(join(home, 'policies'), { recursive: true, mode: 0o700 });
    writeFileSync(join(home, 'policies', 'lead.cedar'), POLICY, { mode: 0o600 });
    proxy = await startProxy({
      home,
      env: { LEAD_KEY: 'lead-key-0123456789abcdef' },
      config: { agents: { lead: { key: 'env:LEAD_KEY', grants: ['github'] }, other: { key: 'env:LEAD_KEY', grants: ['github'] } } },
      grants: [{ id: 'github', type: 'bearer', domains: ['api.example.test'], secret: CANARY }],
    });
    const minted = await proxy.cli(['agents', 'delegate', 'lead', '--name', 'worker', '--json']);
    expect(minted.stderr).toBe('');
    childUrl = (JSON.parse(minted.stdout) as { proxy_url: string }).proxy_url;
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const curl = async (method: string, proxyUrl = childUrl) => {
    const result = await runProcess(
      'curl',
      ['-sS', '-X', method, '-w', '\n%{http_code}', `https://api.example.test:${upstream.port}/echo`],
      cleanEnv({ HTTPS_PROXY: proxyUrl, CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    const lines = result.stdout.split('\n');
    return { status: Number(lines.at(-1)), body: lines.slice(0, -1).join('\n') };
  };

  it('lets the child do what neither forbids', async () => {
    await waitForAsync(async () => ((await curl('GET')).status === 200 ? true : undefined), 'the child to be served');
  });

  it("refuses the child by a policy on its parent's tree (principal in) and on its parent itself (principal ==)", async () => {
    const seen = upstream.seen.length;
    const deleted = await curl('DELETE');
    expect(deleted.status).toBe(403);
    expect(JSON.parse(deleted.body).error).toMatchObject({ code: 'rule_denied' });
    expect(JSON.parse(deleted.body).error.message).toContain('lead-tree-no-delete');
    const put = await curl('PUT');
    expect(put.status).toBe(403);
    expect(JSON.parse(put.body).error.message).toContain('lead-itself-no-put');
    expect(upstream.seen.length).toBe(seen);
    expect(`${deleted.body}${put.body}`).not.toContain(CANARY);
  });

  it('leaves an agent outside the tree alone', async () => {
    const other = `http://other:lead-key-0123456789abcdef@127.0.0.1:${proxy.port}`;
    expect((await curl('DELETE', other)).status).toBe(200);
    expect((await curl('PUT', other)).status).toBe(200);
  });
});
