import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { codexSocket, startCodexSocketStandin } from '../helpers/codex-socket.ts';
import type { StandinServer } from '../helpers/model-standins/server.ts';
import { waitFor } from '../helpers/wait.ts';

const AGENT_KEY = 'socket-floor-agent-key-0123456789';

describe("Codex's socket under a budget: read, floored, continuations only of what keyway saw", () => {
  let standin: StandinServer;
  let proxy: TestProxy;
  /** Every message the stand-in received whole (a message cut before its end never arrives). */
  const got: Record<string, unknown>[] = [];
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    standin = await startCodexSocketStandin(got);
    proxy = await startProxy({
      env: { MODEL_KEY: 'sk-socket-floor-model-key', AGENT_KEY },
      config: {
        proxy: { hosts: { 'api.openai.com': '127.0.0.1' } },
        grants: { openai: { type: 'bearer', domains: [`api.openai.com:${standin.port}`], secret: 'env:MODEL_KEY' } },
        agents: { coder: { key: 'env:AGENT_KEY' } },
        pricing: { 'gpt-test*': { input_per_mtok: 2, output_per_mtok: 8 } },
        budgets: [{ agent: 'coder', limit: { tokens: 10_000_000 }, per: 'day' }],
      },
    });
  });
  afterAll(async () => {
    for (const ws of sockets) ws.terminate();
    await proxy?.stop();
    await standin?.close();
  });

  async function openSocket(): Promise<WebSocket> {
    const ws = await codexSocket(proxy, standin.port, { id: 'coder', key: AGENT_KEY });
    sockets.push(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return ws;
  }

  const create = (extra: Record<string, unknown>) => JSON.stringify({ type: 'response.create', model: 'gpt-test-1', input: 'go on', ...extra });
  const socketLines = () => proxy.auditLines().filter((l) => l['path'] === '/v1/responses' && l['phase'] !== 'sent');
  const socketLine = (from: number) => waitFor(() => socketLines()[from], "the socket's audit line", 15_000);
  const closed = (ws: WebSocket) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));

  it('a continuation of a response keyway never saw complete is refused, and never reaches the server whole', async () => {
    const from = socketLines().length;
    const before = got.length;
    const ws = await openSocket();
    const code = closed(ws);
    ws.send(create({ previous_response_id: 'resp_from_elsewhere', max_output_tokens: 30_000 }));
    expect(await code).toBe(1008);
    const line = await socketLine(from);
    expect(line['code']).toBe('budget_unmeterable');
    expect(String(line['message'])).toContain('continues a response this keyway did not see complete');
    expect(got.length).toBe(before);
  });

  it('a message the server would read otherwise (a name twice) is refused the same way', async () => {
    const from = socketLines().length;
    const before = got.length;
    const ws = await openSocket();
    const code = closed(ws);
    ws.send('{"type":"response.create","model":"gpt-test-1","input":"x","stream":true,"Stream":false}');
    expect(await code).toBe(1008);
    expect((await socketLine(from))['code']).toBe('budget_unmeterable');
    expect(got.length).toBe(before);
  });

  it('left before the response began: counted at its cap; a continuation of a completed one counts that one as input', async () => {
    const from = socketLines().length;
    const ws = await openSocket();
    // One response completes (1,000 in, 200 out), then one continues it and is left before it begins.
    const completed = new Promise<string>((resolve) =>
      ws.on('message', (d) => {
        const event = JSON.parse(d.toString()) as { type: string; response?: { id: string } };
        if (event.type === 'response.completed') resolve(event.response!.id);
      }),
    );
    ws.send(create({ max_output_tokens: 500 }));
    const id = await completed;
    const seen = got.length;
    ws.send(create({ previous_response_id: id, max_output_tokens: 30_000, metadata: 'slow' }));
    await waitFor(() => (got.length > seen ? true : undefined), 'the server to have the continuation', 10_000);
    ws.close();
    const usage = (await socketLine(from))['usage'] as { input_tokens: number; output_tokens: number; partial?: boolean };
    // The first: 1,000 + 200 as billed. The continuation: at least the 1,200 it continues plus its
    // message, and its 30,000 cap.
    expect(usage.partial).toBe(true);
    expect(usage.input_tokens).toBeGreaterThanOrEqual(1000 + 1200);
    expect(usage.output_tokens).toBeGreaterThanOrEqual(200 + 30_000);
  });

  it('left after its first delta: at least its cap as output', async () => {
    const from = socketLines().length;
    const ws = await openSocket();
    const delta = new Promise<void>((resolve) => ws.on('message', (d) => d.toString().includes('output_text.delta') && resolve()));
    ws.send(create({ max_output_tokens: 7_000, metadata: 'cut' }));
    await delta;
    ws.close();
    const usage = (await socketLine(from))['usage'] as { output_tokens: number };
    expect(usage.output_tokens).toBeGreaterThanOrEqual(7_000);
  });
});
