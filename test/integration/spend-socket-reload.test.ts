// Live sockets obey reloads (issue 85): a budget that `keyway reload` adds applies to WebSockets
// opened before it, from the agent's next message. A Codex-style Responses socket (metered) is
// checked and counted from then on, and closed (1008) once the new budget is used up; a socket on a
// model host that keyway does not meter (OpenAI's Realtime) is closed (1008, budget_unmeterable) at
// its next message, which never reaches the vendor. Real `ws` clients through a CONNECT tunnel,
// the real CLI's reload, loopback stand-ins that record every message they get.
import { readFileSync, writeFileSync } from 'node:fs';
import type { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parse, stringify } from 'yaml';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { openaiWebSocketHandler } from '../helpers/model-standins/openai.ts';
import { type StandinServer, type StandinWsHandler, startStandinServer } from '../helpers/model-standins/server.ts';
import { openTunnel } from '../helpers/raw-http.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY = `${CANARY}-socket-reload-key`;
const AGENT_KEY = 'socket-reload-agent-key-0123456789';
const USAGE = { input: 1000, output: 500 };

/** OpenAI's Realtime socket, as a stand-in: every message it gets is recorded (and would be billed). */
function realtime(messages: string[]): StandinWsHandler {
  return (req) =>
    req.path === '/v1/realtime'
      ? {
          accept: (socket) =>
            socket.on('message', (data) => {
              messages.push(data.toString());
              socket.send(JSON.stringify({ type: 'response.done' }));
            }),
        }
      : undefined;
}

describe('a budget added by reload applies to open WebSockets at their next message', () => {
  let standin: StandinServer;
  let proxy: TestProxy;
  const responses: unknown[] = [];
  const realtimeMessages: string[] = [];
  const sockets: WebSocket[] = [];
  const outputs: string[] = [];

  beforeAll(async () => {
    standin = await startStandinServer({
      handlers: [],
      websocketHandlers: [realtime(realtimeMessages), openaiWebSocketHandler({ keys: [KEY], messages: responses, reply: { usage: USAGE } })],
    });
    proxy = await startProxy({
      env: { MODEL_KEY: KEY, AGENT_KEY },
      config: {
        proxy: { hosts: { 'api.openai.com': '127.0.0.1' } },
        grants: { openai: { type: 'bearer', domains: [`api.openai.com:${standin.port}`], secret: 'env:MODEL_KEY' } },
        agents: { coder: { key: 'env:AGENT_KEY' } },
      },
    });
  });
  afterAll(async () => {
    for (const ws of sockets) ws.terminate();
    await proxy?.stop();
    await standin?.close();
  });

  async function openSocket(path: string): Promise<WebSocket> {
    const authority = `api.openai.com:${standin.port}`;
    const basic = Buffer.from(`coder:${AGENT_KEY}`).toString('base64');
    const tunnel = await openTunnel(proxy.port, authority, `Proxy-Authorization: Basic ${basic}\r\n`);
    const ca = readFileSync(proxy.caPath, 'utf8');
    const ws = new WebSocket(`wss://${authority}${path}`, {
      headers: { authorization: 'Bearer keyway-placeholder' },
      createConnection: (() => tlsConnect({ socket: tunnel, servername: 'api.openai.com', ca })) as unknown as typeof netConnect,
    });
    sockets.push(ws);
    ws.on('message', (data) => outputs.push(data.toString()));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    return ws;
  }

  /** Sends `response.create` and waits for its response.completed. */
  function respond(ws: WebSocket): Promise<void> {
    return new Promise((resolve, reject) => {
      const onMessage = (data: WebSocket.RawData) => {
        if ((JSON.parse(data.toString()) as { type?: string }).type !== 'response.completed') return;
        ws.off('message', onMessage);
        resolve();
      };
      ws.on('message', onMessage);
      ws.once('close', () => reject(new Error('closed before the response completed')));
      ws.send(JSON.stringify({ type: 'response.create', model: 'gpt-test-1', input: 'hi' }));
    });
  }

  const closed = (ws: WebSocket) =>
    ws.readyState === WebSocket.CLOSED ? Promise.resolve(-1) : new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));

  async function reloadWith(budgets: unknown[]): Promise<void> {
    const path = join(proxy.home, 'config', 'keyway.yaml');
    const config = parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    writeFileSync(path, stringify({ ...config, budgets }));
    const result = await proxy.cli(['reload']);
    outputs.push(result.stdout, result.stderr);
    expect(result.code, result.stderr).toBe(0);
  }

  it('a Responses socket and a Realtime socket open with no budget carry messages up (controls)', async () => {
    const codex = await openSocket('/v1/responses');
    const live = await openSocket('/v1/realtime');
    await respond(codex);
    expect(responses).toHaveLength(1);
    live.send('{"type":"response.create"}');
    await waitFor(() => (realtimeMessages.length === 1 ? true : undefined), 'the realtime message upstream');

    // A budget of 1,000 tokens for the agent: one more response (1,500) uses it up.
    await reloadWith([{ agent: 'coder', limit: { tokens: 1000 }, per: 'day' }]);

    // The Responses socket: the next message is checked (under the new budget, it goes) and its
    // answer counted; that crossed the limit, so the socket is closed and nothing more goes up.
    // The agent gets the whole response it is charged for (its response.completed), then the close.
    const codexClosed = closed(codex);
    await respond(codex);
    expect(await codexClosed).toBe(1008);
    expect(responses).toHaveLength(2);

    // The Realtime socket: no meter reads it, and a budget now applies: closed at its next message,
    // which the vendor never gets.
    const liveClosed = closed(live);
    live.send('{"type":"response.create"}');
    expect(await liveClosed).toBe(1008);
    expect(realtimeMessages).toHaveLength(1);

    // Each socket's line when it closed: the usage it carried, and why keyway closed it.
    const lines = await waitFor(() => {
      const found = proxy.auditLines().filter((l) => l['agent'] === 'coder');
      return found.length === 2 ? found : undefined;
    }, 'both sockets audited');
    const byPath = Object.fromEntries(lines.map((l) => [l['path'], l]));
    expect(byPath['/v1/responses']).toMatchObject({ decision: 'deny', code: 'budget_exceeded', usage: { input_tokens: 2000, output_tokens: 1000 } });
    expect(byPath['/v1/realtime']).toMatchObject({ decision: 'deny', code: 'budget_unmeterable' });
    expect(byPath['/v1/realtime']?.['message']).toContain('keyway cannot meter the WebSocket /v1/realtime');
  });

  it('a new socket under the used-up budget is refused at its handshake; a Realtime one as unmeterable', async () => {
    const from = proxy.auditLines().length;
    await expect(openSocket('/v1/responses')).rejects.toThrow(/upgrade refused: 429/);
    await expect(openSocket('/v1/realtime')).rejects.toThrow(/upgrade refused: 429/);
    const refusals = await waitFor(() => {
      const found = proxy.auditLines().slice(from);
      return found.length === 2 ? found.map((l) => [l['path'], l['code']]) : undefined;
    }, 'two refusals');
    expect(refusals).toEqual([
      ['/v1/responses', 'budget_exceeded'],
      ['/v1/realtime', 'budget_unmeterable'],
    ]);
  });

  it('no real key in any output, audit line or log', () => {
    const everything = [...outputs, ...proxy.logs, readFileSync(proxy.auditPath, 'utf8')].join('\n');
    expect(findLeak(everything, KEY)).toBeUndefined();
  });
});
