import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { codexSocket, startCodexSocketStandin } from '../helpers/codex-socket.ts';
import type { StandinServer } from '../helpers/model-standins/server.ts';
import { openTunnel } from '../helpers/raw-http.ts';
import { waitFor, waitForAsync } from '../helpers/wait.ts';

const LEAD_KEY = 'lead-key-0123456789abcdef';
const BOSS_KEY = 'boss-key-0123456789abcdef';

describe("a child cannot dodge its parent's budget on a socket or by hanging up", () => {
  let standin: StandinServer;
  let proxy: TestProxy;
  const got: Record<string, unknown>[] = [];
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    standin = await startCodexSocketStandin(got, ['/v1/responses', '/v1/realtime']);
    proxy = await startProxy({
      env: { MODEL_KEY: 'sk-deleg-dodge-model-key', LEAD_KEY, BOSS_KEY },
      config: {
        proxy: { hosts: { 'api.openai.com': '127.0.0.1' } },
        grants: { openai: { type: 'bearer', domains: [`api.openai.com:${standin.port}`], secret: 'env:MODEL_KEY' } },
        agents: { lead: { key: 'env:LEAD_KEY' }, boss: { key: 'env:BOSS_KEY' } },
        pricing: { 'gpt-test*': { input_per_mtok: 2, output_per_mtok: 8 } },
        budgets: [
          { agent: 'lead', limit: { tokens: 1000 }, per: 'day' },
          { agent: 'boss', limit: { tokens: 10_000_000 }, per: 'day' },
        ],
      },
    });
  });
  afterAll(async () => {
    for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) ws.terminate();
    await proxy?.stop();
    await standin?.close();
  });

  const authority = () => `api.openai.com:${standin.port}`;
  const basic = (id: string, key: string) => `Proxy-Authorization: Basic ${Buffer.from(`${id}:${key}`).toString('base64')}\r\n`;
  /** A child minted through the real CLI: its id and key, once the proxy lets its CONNECT through. */
  const child = async (parent: string, name: string): Promise<{ id: string; key: string }> => {
    const minted = await proxy.cli(['agents', 'delegate', parent, '--name', name, '--json']);
    expect(minted.code, minted.stderr).toBe(0);
    const url = new URL((JSON.parse(minted.stdout) as { proxy_url: string }).proxy_url);
    const who = { id: url.username, key: decodeURIComponent(url.password) };
    await waitForAsync(async () => {
      const tunnel = await openTunnel(proxy.port, authority(), basic(who.id, who.key)).catch(() => undefined);
      tunnel?.destroy();
      return tunnel === undefined ? undefined : true;
    }, `${name} to be served`);
    return who;
  };
  const openSocket = async (who: { id: string; key: string }, path = '/v1/responses'): Promise<WebSocket> => {
    const ws = await codexSocket(proxy, standin.port, who, path);
    sockets.push(ws);
    // A refused handshake is an error too: the tests read its response instead.
    ws.on('error', () => undefined);
    return ws;
  };
  const opened = (ws: WebSocket) =>
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
  /** The handshake's refusal: the proxy's status and its error code header. */
  const refusedHandshake = (ws: WebSocket) =>
    new Promise<{ status: number; code: string | undefined; body: string }>((resolve, reject) => {
      ws.once('open', () => reject(new Error('the handshake was let through')));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, code: res.headers['x-keyway-error'] as string | undefined, body }));
      });
    });
  const create = (extra: Record<string, unknown> = {}) => JSON.stringify({ type: 'response.create', model: 'gpt-test-1', input: 'go on', ...extra });
  const budgetUsed = async (name: string): Promise<number> => {
    const out = await proxy.cli(['spend', '--json']);
    return (JSON.parse(out.stdout) as { budgets: Array<{ name: string; used: number }> }).budgets.find((b) => b.name === name)?.used ?? 0;
  };

  it("a child's socket responses count on its parent's budget: the socket closes once it is spent, and the next handshake is refused naming the parent", async () => {
    const kid = await child('lead', 'socket-kid');
    const ws = await openSocket(kid);
    await opened(ws);
    const code = new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
    const before = got.length;
    ws.send(create());
    // 1,200 tokens on a 1,000-token budget of the parent's: the response reaches the child whole, then the socket closes.
    expect(await code).toBe(1008);
    expect(got.length).toBe(before + 1);
    await waitForAsync(async () => ((await budgetUsed('budgets[0]')) === 1200 ? true : undefined), "the parent's budget to hold the child's socket response");
    const again = await refusedHandshake(await openSocket(kid));
    expect(again.status).toBe(429);
    expect(again.code).toBe('budget_exceeded');
    expect(JSON.parse(again.body).error.message).toContain('model budget budgets[0] (agent "lead", a parent of this agent) has used 1200 of 1000 tokens');
    // The parent is refused by the same count.
    const parent = await refusedHandshake(await openSocket({ id: 'lead', key: LEAD_KEY }));
    expect(parent.code).toBe('budget_exceeded');
    expect(got.length).toBe(before + 1);
  });

  it("a response the child hangs up on before its end still counts on the parent's budget", async () => {
    const kid = await child('boss', 'hangup-kid');
    const ws = await openSocket(kid);
    await opened(ws);
    const before = got.length;
    ws.send(create({ metadata: 'cut', max_output_tokens: 500 }));
    await waitFor(() => (got.length > before ? true : undefined), 'the message at the stand-in');
    // The child goes before the response's end: no usage was reported.
    await new Promise((r) => setTimeout(r, 200));
    ws.terminate();
    const line = await waitFor(
      () => proxy.auditLines().find((l) => l['agent'] === 'hangup-kid' && l['path'] === '/v1/responses' && l['phase'] !== 'sent' && l['usage'] !== undefined),
      "the socket's audit line",
      15_000,
    );
    expect(line).toMatchObject({ chain: ['boss', 'hangup-kid'] });
    // Counted at least its cap as output, on the parent's budget.
    await waitForAsync(async () => ((await budgetUsed('budgets[1]')) >= 500 ? true : undefined), "the parent's budget to hold the floor");
  });

  it("a socket keyway cannot meter is refused a child under its parent's budget, though the child has none of its own", async () => {
    const kid = await child('boss', 'realtime-kid');
    const before = got.length;
    const refused = await refusedHandshake(await openSocket(kid, '/v1/realtime'));
    expect(refused.status).toBe(429);
    expect(refused.code).toBe('budget_unmeterable');
    expect(got.length).toBe(before);
  });
});
