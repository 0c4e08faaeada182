// Issue 89: stage mcp asks a delegated agent's ancestors of each JSON-RPC message. The MCP SDK's own
// client, as a child of a parent whose YAML rules deny the delete_* tools and whose Cedar policy
// (on the parent itself, `principal ==`, which the child's own query does not match) forbids
// close_issue: the child calls what every ancestor allows, is refused what any denies (naming the
// parent), waits for a person where the parent's rule would, sees only the tools its parent may call, and is narrowed by a reload of the parent's
// rules on the connection it holds open. Nothing refused reaches the server.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { makeHome, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startMcpServer, type TestMcpServer } from '../helpers/mcp-server.ts';
import { waitForAsync } from '../helpers/wait.ts';

const TOKEN = `${CANARY}-tracker-token`;
const POLICY = `@id("bot-itself-no-close")
forbid (principal == Agent::"bot", action == Action::"mcp_call", resource == Grant::"tracker")
when { context has mcp_tool && context.mcp_tool == "close_issue" };
`;
const BOT_RULES = [
  { grant: 'tracker', deny: true, tools: ['delete_*'] },
  { grant: 'tracker', tools: ['search_*', 'get_*', 'close_*'] },
  { grant: 'tracker', tools: ['create_comment'], approve: 'human', approval: { wait: 0 } },
  { grant: 'tracker' },
];

interface RpcRefusal extends Error {
  data?: { code: string; message: string };
}

describe('a delegated agent on an MCP server its parent limits by tool', () => {
  let server: TestMcpServer;
  let proxy: TestProxy;
  let childUrl: string;
  const dispatchers: ProxyAgent[] = [];

  beforeAll(async () => {
    server = await startMcpServer(TOKEN);
    const home = makeHome();
    mkdirSync(join(home, 'policies'), { recursive: true, mode: 0o700 });
    writeFileSync(join(home, 'policies', 'bot.cedar'), POLICY, { mode: 0o600 });
    proxy = await startProxy({
      home,
      env: { TRACKER: TOKEN, BOT_KEY: 'bot-key-0123456789' },
      config: {
        grants: { tracker: { type: 'bearer', domains: ['api.example.test'], secret: 'env:TRACKER', mcp: { paths: ['/mcp'] } } },
        agents: { bot: { key: 'env:BOT_KEY', grants: ['tracker'], rules: BOT_RULES } },
      },
    });
    const minted = await proxy.cli(['agents', 'delegate', 'bot', '--name', 'helper', '--json']);
    expect(minted.stderr).toBe('');
    childUrl = (JSON.parse(minted.stdout) as { proxy_url: string }).proxy_url;
  });
  afterAll(async () => {
    for (const d of dispatchers) await d.close().catch(() => undefined);
    for (const text of [readFileSync(proxy.auditPath, 'utf8'), ...proxy.logs]) expect(findLeak(text, TOKEN), 'the token in an output').toBeUndefined();
    await proxy?.stop();
    await server?.close();
  });

  /** The MCP SDK's client through keyway as the agent of `url`, over one dispatcher (its connections stay open). */
  const connect = async (url: string): Promise<Client> => {
    const dispatcher = new ProxyAgent({ uri: url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    dispatchers.push(dispatcher);
    const transport = new StreamableHTTPClientTransport(new URL(server.url()), {
      fetch: (u, init) => undiciFetch(u as string, { ...(init as object), dispatcher }) as unknown as Promise<Response>,
    });
    const client = new Client({ name: 'agent', version: '1.0.0' });
    await client.connect(transport);
    return client;
  };
  const refusedCall = async (client: Client, name: string, args: Record<string, unknown>): Promise<RpcRefusal | undefined> =>
    client.callTool({ name, arguments: args }).then(
      () => undefined,
      (err: RpcRefusal) => err,
    );
  const toolNames = async (client: Client) => (await client.listTools()).tools.map((t) => t.name).sort();

  it('lets the child call what its parent allows, refuses what the parent denies (YAML or Cedar), naming the parent', async () => {
    // The proxy reads the new child from the store: until then its key is unknown.
    const child = await waitForAsync(() => connect(childUrl).catch(() => undefined), 'the child to be served');
    try {
      const found = await child.callTool({ name: 'search_issues', arguments: { query: 'x' } });
      expect(found.content).toEqual([{ type: 'text', text: 'search_issues ran' }]);
      const deleted = await refusedCall(child, 'delete_issue', { id: 7 });
      expect(deleted?.data?.code).toBe('policy_denied');
      expect(deleted?.message).toContain('agent "bot", a parent of this agent');
      expect(deleted?.message).toContain('agents.bot.rules[0]');
      const closed = await refusedCall(child, 'close_issue', { id: 7 });
      expect(closed?.data?.code).toBe('rule_denied');
      expect(closed?.message).toContain('agent "bot", a parent of this agent');
      expect(closed?.message).toContain('bot-itself-no-close');
      // A call the parent's rule sends to a person asks one for the child too.
      const asked = await refusedCall(child, 'create_comment', { id: 7, body: 'hi' });
      expect(asked?.data?.code).toBe('approval_required');
      // Its tools/list shows only what the parent's rules let it call.
      expect(await toolNames(child)).toEqual(['close_issue', 'create_comment', 'get_issue', 'search_issues']);
      expect(server.calls.map((c) => c.tool)).toEqual(['search_issues']);
    } finally {
      await child.close();
    }
    const line = proxy.auditLines().findLast((l) => l['agent'] === 'helper' && l['code'] === 'policy_denied');
    expect(line).toMatchObject({ decision: 'deny', chain: ['bot', 'helper'], mcp: { method: 'tools/call', tool: 'delete_issue' } });
  });

  it('refuses a batch whole when the parent denies one call in it', async () => {
    const dispatcher = new ProxyAgent({ uri: childUrl, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    dispatchers.push(dispatcher);
    const calls = server.calls.length;
    const answer = await undiciFetch(server.url(), {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify([
        { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_issue', arguments: { id: 1 } } },
        { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'delete_issue', arguments: { id: 1 } } },
      ]),
    });
    const body = (await answer.json()) as Array<{ id: number; error: { data: { code: string; message: string } } }>;
    expect(body.map((m) => m.id)).toEqual([1, 2]);
    expect(body[1]!.error.data.message).toContain('agent "bot", a parent of this agent');
    expect(body[0]!.error.data.message).toContain('not sent');
    expect(server.calls.length).toBe(calls);
  });

  it('leaves the parent as it was: its own rules and policy, nothing more', async () => {
    const parent = await connect(`http://bot:bot-key-0123456789@127.0.0.1:${proxy.port}`);
    try {
      expect((await parent.callTool({ name: 'get_issue', arguments: { id: 1 } })).content).toEqual([{ type: 'text', text: 'get_issue ran' }]);
      expect((await refusedCall(parent, 'delete_issue', { id: 1 }))?.message).not.toContain('a parent of this agent');
      expect(await toolNames(parent)).toEqual(['close_issue', 'create_comment', 'get_issue', 'search_issues']);
    } finally {
      await parent.close();
    }
  });

  it("narrows the child's open session when the parent's rules are narrowed by a reload", async () => {
    const child = await connect(childUrl);
    try {
      expect((await child.callTool({ name: 'get_issue', arguments: { id: 2 } })).content).toEqual([{ type: 'text', text: 'get_issue ran' }]);
      const path = join(proxy.home, 'config', 'keyway.yaml');
      const config = parse(readFileSync(path, 'utf8')) as { agents: { bot: { rules: unknown[] } } };
      config.agents.bot.rules = [{ grant: 'tracker', deny: true, tools: ['delete_*', 'get_*'] }, { grant: 'tracker' }];
      writeFileSync(path, stringify(config));
      expect(await proxy.running.reload()).toMatchObject({ reloaded: true });
      const calls = server.calls.length;
      const refused = await refusedCall(child, 'get_issue', { id: 2 });
      expect(refused?.message).toContain('agent "bot", a parent of this agent');
      expect(await toolNames(child)).toEqual(['close_issue', 'create_comment', 'search_issues']);
      expect(server.calls.length).toBe(calls);
    } finally {
      await child.close();
    }
  });
});
