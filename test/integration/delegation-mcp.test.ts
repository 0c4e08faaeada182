import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startMcpServer, type TestMcpServer } from '../helpers/mcp-server.ts';
import { waitForAsync } from '../helpers/wait.ts';

// Issue 89: a parent whose rules limit an MCP server's tools. Stage mcp judges each JSON-RPC message
// by the child's own rules only, so until it asks the ancestors too, the child is refused that
// endpoint outright rather than let past its parent's tool rules. Another endpoint of the grant,
// and the parent itself, are served as before.

const TOKEN = `${CANARY}-tracker-token`;
const LIST = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });

describe('a delegated agent on an MCP server its parent limits by tool', () => {
  let server: TestMcpServer;
  let proxy: TestProxy;
  const dispatchers: ProxyAgent[] = [];

  beforeAll(async () => {
    server = await startMcpServer(TOKEN);
    proxy = await startProxy({
      env: { TRACKER: TOKEN, BOT_KEY: 'bot-key-0123456789' },
      config: {
        grants: { tracker: { type: 'bearer', domains: ['api.example.test'], secret: 'env:TRACKER', mcp: { paths: ['/mcp'] } } },
        agents: { bot: { key: 'env:BOT_KEY', grants: ['tracker'], rules: [{ grant: 'tracker', deny: true, tools: ['delete_*'] }, { grant: 'tracker' }] } },
      },
    });
  });
  afterAll(async () => {
    for (const d of dispatchers) await d.close().catch(() => undefined);
    expect(readFileSync(proxy.auditPath, 'utf8')).not.toContain(TOKEN);
    await proxy?.stop();
    await server?.close();
  });

  const through = (url: string) => {
    const d = new ProxyAgent({ uri: url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    dispatchers.push(d);
    return d;
  };
  const post = async (dispatcher: ProxyAgent, path = '/mcp') => {
    const answer = await request(server.url('api.example.test', path), {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: LIST,
    });
    return { status: answer.statusCode, body: await answer.body.text() };
  };

  it('refuses the child the endpoint, naming the parent; lets it through elsewhere on the grant', async () => {
    const minted = await proxy.cli(['agents', 'delegate', 'bot', '--name', 'helper', '--json']);
    expect(minted.stderr).toBe('');
    const url = (JSON.parse(minted.stdout) as { proxy_url: string }).proxy_url;
    // Another path of the grant: served, once the proxy has read the new child (until then, its key is unknown: 407).
    const child = await waitForAsync(async () => {
      const d = through(url);
      // Any answer from the server (it has no route there): the tunnel was let through.
      const ok = await post(d, '/other').then(
        (r) => r.status !== 403 && r.status !== 407,
        () => false,
      );
      return ok ? d : undefined;
    }, 'the child to be served');
    const refused = await post(child);
    expect(refused.status).toBe(403);
    const error = (JSON.parse(refused.body) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe('policy_denied');
    expect(error.message).toContain('agent "bot", a parent of this agent, limits the MCP tools');
    expect(refused.body).not.toContain(TOKEN);
  });

  it('leaves the parent on the endpoint', async () => {
    const parent = through(`http://bot:bot-key-0123456789@127.0.0.1:${proxy.port}`);
    const ok = await post(parent);
    expect(ok.status).not.toBe(403);
  });
});
