// Codex's Responses WebSocket, for the tests of spend on a socket: a loopback stand-in that bills as
// the vendor does, and a real `ws` client that reaches it through keyway's CONNECT as an agent.
// Each message is a response: created, one delta, then completed with 1000 input and 200 output
// tokens, unless its metadata says "cut" (stops after the delta: a response left early) or "slow"
// (answers nothing yet). Every message the stand-in received whole is pushed to `got`.
import { readFileSync } from 'node:fs';
import type { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import WebSocket from 'ws';
import type { TestProxy } from './keyway.ts';
import { type StandinServer, startStandinServer } from './model-standins/server.ts';
import { openTunnel } from './raw-http.ts';

/** The stand-in, answering a socket on each of `paths`. */
export function startCodexSocketStandin(got: Record<string, unknown>[], paths: readonly string[] = ['/v1/responses']): Promise<StandinServer> {
  return startStandinServer({
    handlers: [],
    websocketHandlers: [
      (req) =>
        paths.includes(req.path)
          ? {
              accept: (socket) =>
                socket.on('message', (data) => {
                  const message = JSON.parse(data.toString()) as Record<string, unknown>;
                  got.push(message);
                  const id = `resp_${got.length}`;
                  if (message['metadata'] === 'slow') return;
                  socket.send(JSON.stringify({ type: 'response.created', response: { id, model: 'gpt-test-1' } }));
                  socket.send(JSON.stringify({ type: 'response.output_text.delta', delta: 'Hel' }));
                  if (message['metadata'] === 'cut') return;
                  socket.send(
                    JSON.stringify({
                      type: 'response.completed',
                      response: { id, model: 'gpt-test-1', usage: { input_tokens: 1000, output_tokens: 200, total_tokens: 1200 } },
                    }),
                  );
                }),
            }
          : undefined,
    ],
  });
}

/**
 * A WebSocket to api.openai.com:PORT PATH through keyway as `who` (its CONNECT's Proxy-Authorization),
 * trusting keyway's CA alone; not yet open. The grant's placeholder stands for the key.
 */
export async function codexSocket(proxy: TestProxy, port: number, who: { id: string; key: string }, path = '/v1/responses'): Promise<WebSocket> {
  const authority = `api.openai.com:${port}`;
  const basic = Buffer.from(`${who.id}:${who.key}`).toString('base64');
  const tunnel = await openTunnel(proxy.port, authority, `Proxy-Authorization: Basic ${basic}\r\n`);
  const ca = readFileSync(proxy.caPath, 'utf8');
  return new WebSocket(`wss://${authority}${path}`, {
    headers: { authorization: 'Bearer keyway-placeholder' },
    perMessageDeflate: false,
    createConnection: (() => tlsConnect({ socket: tunnel, servername: 'api.openai.com', ca })) as unknown as typeof netConnect,
  });
}
