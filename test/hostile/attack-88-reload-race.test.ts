// Attacking policy as code (issue 88, item 7): a reload racing requests. An audit line carries the
// hash of the policy that judged its request, or the proof lies: `policy test` replays a line under
// the policy its hash names. An MCP tools/call is judged when its body has arrived, after stage
// access put the hash on the line: an agent that sends the head, waits for a reload, then sends the
// body must not get a verdict of one policy on a line naming another. And every hash on the log
// has an earlier policy.load line, even for requests judged while a reload is being written.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { homeWithPolicy } from '../helpers/cedar-home.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startMcpServer, type TestMcpServer } from '../helpers/mcp-server.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = `${CANARY}-tracker-token`;
const OPEN =
  '@id("reads-only") forbid (principal, action == Action::"mcp_call", resource) when { context has mcp_tool && context.mcp_tool == "close_issue" };\n';
const CLOSED =
  '@id("no-deleting") forbid (principal, action == Action::"mcp_call", resource) when { context has mcp_tool && context.mcp_tool like "delete_*" };\n';

describe('attack 88: a reload racing requests', () => {
  let server: TestMcpServer;
  let proxy: TestProxy;
  let dispatcher: ProxyAgent;
  let policyFile: string;

  beforeAll(async () => {
    server = await startMcpServer(TOKEN);
    const { home, file } = homeWithPolicy(OPEN, 'mcp.cedar');
    policyFile = file;
    proxy = await startProxy({
      home,
      env: { TRACKER: TOKEN, BOT_KEY: 'bot-key-1' },
      config: {
        grants: { tracker: { type: 'bearer', domains: ['api.example.test'], secret: 'env:TRACKER', mcp: { paths: ['/mcp'] } } },
        agents: { bot: { key: 'env:BOT_KEY', grants: ['tracker'] } },
      },
    });
    dispatcher = new ProxyAgent({
      uri: `http://bot:bot-key-1@127.0.0.1:${proxy.port}`,
      connections: 1,
      requestTls: { ca: readFileSync(proxy.caPath, 'utf8') },
    });
  });
  afterAll(async () => {
    await dispatcher?.close();
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...proxy.logs]) expect(findLeak(text, TOKEN), 'the token in an output').toBeUndefined();
    await proxy?.stop();
    await server?.close();
  });

  const loads = () => proxy.auditLines().filter((l) => l['action'] === 'policy.load');
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const call = (id: number, tool: string) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: { id: 7 } } });

  /** A harmless call, so the tunnel is up and the next request's head reaches keyway at once. */
  async function warmUp(id: number): Promise<void> {
    const warm = await undiciFetch(server.url(), { method: 'POST', dispatcher, headers, body: call(id, 'search_issues') });
    expect(warm.status).toBe(200);
    await warm.text();
  }

  /** A call whose head and first bytes go now and whose rest waits for `release` (a reload in between). */
  function callWithBodyHeld(body: string): { answer: Promise<Response>; release: () => void } {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const stream = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(new TextEncoder().encode(body.slice(0, 10)));
        await released;
        controller.enqueue(new TextEncoder().encode(body.slice(10)));
        controller.close();
      },
    });
    const answer = undiciFetch(server.url(), { method: 'POST', dispatcher, headers, body: stream as never, duplex: 'half' });
    return { answer, release };
  }

  it('judges a tools/call whose body comes after a reload by the policy its line names', async () => {
    await warmUp(1);
    const first = loads()[0]!['policy'];

    const { answer, release } = callWithBodyHeld(call(2, 'delete_issue'));
    // The head has passed stage access (under the first policy) while the body waits.
    await new Promise((resolve) => setTimeout(resolve, 400));
    writeFileSync(policyFile, CLOSED, { mode: 0o600 });
    expect(await proxy.running.reload()).toMatchObject({ reloaded: true });
    const second = await waitFor(() => loads()[1]?.['policy'], 'the second policy.load line');
    expect(second).not.toBe(first);
    release();
    await (await answer).text();

    const line = await lastLine('delete_issue');
    // Either verdict is fair; a verdict of one policy on a line naming the other is not.
    if (line['decision'] === 'deny') expect(line['policy'], 'refused by the second policy').toBe(second);
    else expect(line['policy'], 'admitted by the first policy').toBe(first);
    if (line['policy'] === first) expect(server.calls.map((c) => c.tool)).toContain('delete_issue');
    else expect(server.calls.map((c) => c.tool)).not.toContain('delete_issue');
  });

  it('writes a policy.load line before any request is judged under the policy it loads', async () => {
    const before = loads().length;
    writeFileSync(policyFile, `${CLOSED}@id("no-closing") forbid (principal, action, resource) when { context.path like "/closed*" };\n`, { mode: 0o600 });
    let reloading = true;
    let sent = 0;
    // Requests keep coming while the reload swaps the policy and writes its lines.
    const agent = async () => {
      while (reloading || sent < 40) {
        sent++;
        const res = await undiciFetch(server.url('api.example.test', `/page/${sent}`), { dispatcher: busy });
        await res.text();
      }
    };
    const busy = new ProxyAgent({
      uri: `http://bot:bot-key-1@127.0.0.1:${proxy.port}`,
      connections: 8,
      requestTls: { ca: readFileSync(proxy.caPath, 'utf8') },
    });
    try {
      const agents = Array.from({ length: 8 }, agent);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await proxy.running.reload()).toMatchObject({ reloaded: true });
      await new Promise((resolve) => setTimeout(resolve, 200));
      reloading = false;
      await Promise.all(agents);
    } finally {
      await busy.close();
    }
    const lines = proxy.auditLines();
    const loadAt = lines.flatMap((l, i) => (l['action'] === 'policy.load' ? [i] : []));
    const load = loadAt[before] ?? -1;
    expect(load).toBeGreaterThan(0);
    const hash = lines[load]!['policy'];
    const early = lines.slice(0, load).filter((l) => l['policy'] === hash);
    expect(
      early.map((l) => `${l['action'] ?? l['path']}`),
      'lines judged under a policy before its policy.load line',
    ).toEqual([]);
    const verified = await proxy.cli(['audit', 'verify']);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  });

  it('judges a tools/call by the YAML rules of the policy its line names, when the body comes after a reload', async () => {
    // The agent's YAML rules: every tool, then (reloaded) all but close_issue. The hash covers them.
    const configFile = join(proxy.home, 'config', 'keyway.yaml');
    const original = readFileSync(configFile, 'utf8');
    const withTools = (tools: string[]) =>
      original.replace(/( {2}bot:\n(?: {4}.*\n)*)/, (block) => `${block}    rules:\n      - grant: tracker\n        tools: [${tools.join(', ')}]\n`);
    writeFileSync(configFile, withTools(['search_issues', 'close_issue']));
    expect(await proxy.running.reload()).toMatchObject({ reloaded: true });
    const first = await waitFor(() => proxy.auditLines().findLast((l) => l['action'] === 'policy.load')?.['policy'], 'a load line');

    await warmUp(3);

    const { answer, release } = callWithBodyHeld(call(4, 'close_issue'));
    await new Promise((resolve) => setTimeout(resolve, 400));
    writeFileSync(configFile, withTools(['search_issues']));
    expect(await proxy.running.reload()).toMatchObject({ reloaded: true });
    release();
    await (await answer).text();
    const second = proxy.auditLines().findLast((l) => l['action'] === 'policy.load')?.['policy'];
    expect(second).not.toBe(first);

    const line = await lastLine('close_issue');
    if (line['decision'] === 'deny') expect(line['policy'], 'refused by the second policy').toBe(second);
    else expect(line['policy'], 'admitted by the first policy').toBe(first);
  });

  const lastLine = (tool: string) =>
    waitFor(
      () => proxy.auditLines().findLast((l) => (l['mcp'] as { tool?: string } | undefined)?.tool === tool && l['phase'] === undefined),
      `the ${tool} line`,
    );
});
