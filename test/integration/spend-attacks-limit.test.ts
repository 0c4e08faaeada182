// Spend attacks at the limit (issue 63): sockets, hang-ups and many requests at once, through the real
// proxy with real clients against the lenient vendor (spend-attacks.test.ts has the plain routes).
// Every attempt must end refused with nothing billed, or counted at least as billed.
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Readable } from 'node:stream';
import { ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { BILLED_TOKENS, BILLED_USAGE, type Billed, lenientVendor } from '../helpers/model-standins/lenient-vendor.ts';
import { openaiWebSocketHandler } from '../helpers/model-standins/openai.ts';
import { type StandinHandler, type StandinServer, type StandinWsHandler, startStandinServer } from '../helpers/model-standins/server.ts';
import { openTunnel } from '../helpers/raw-http.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY = `${CANARY}-attack-key`;
const AGENT_KEY = 'attack-agent-key-0123456789';
const HOSTS = ['api.anthropic.com', 'api.openai.com', 'generativelanguage.googleapis.com'] as const;
describe('spend attacks at the limit: sockets, hang-ups and many requests at once', () => {
  const LIMIT = 4_500; // three answers of BILLED_TOKENS
  let standin: StandinServer;
  let proxy: TestProxy;
  const billed: Billed[] = [];
  const socketMessages: unknown[] = [];
  const held: ServerResponse[] = [];
  const dispatchers: ProxyAgent[] = [];
  const outputs: string[] = [];
  const as = (id: string) => {
    const d = new ProxyAgent({ uri: `http://${id}:${AGENT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    dispatchers.push(d);
    return d;
  };

  beforeAll(async () => {
    standin = await startStandinServer({
      handlers: [hangingAnthropic(billed, held), usageLastResponses(billed, held), lenientVendor(billed)],
      websocketHandlers: [hangingResponses(socketMessages), openaiWebSocketHandler({ keys: [KEY], messages: socketMessages, reply: { usage: BILLED_USAGE } })],
    });
    const port = standin.port;
    proxy = await startProxy({
      env: { MODEL_KEY: KEY, AGENT_KEY },
      config: {
        proxy: { hosts: Object.fromEntries(HOSTS.map((h) => [h, '127.0.0.1'])) },
        grants: {
          anthropic: { type: 'api_key', domains: [`api.anthropic.com:${port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-api-key' } },
          openai: { type: 'bearer', domains: [`api.openai.com:${port}`], secret: 'env:MODEL_KEY' },
        },
        agents: Object.fromEntries(
          ['sockets', 'one-socket', 'frames', 'unfinished', 'rush', 'leaver', 'chunked', 'realtime'].map((id) => [id, { key: 'env:AGENT_KEY' }]),
        ),
        budgets: [{ agent: '*', limit: { tokens: LIMIT }, per: 'day' }],
      },
    });
  });
  afterAll(async () => {
    for (const res of held) res.destroy();
    for (const d of dispatchers) await d.close();
    await proxy?.stop();
    await standin?.close();
  });

  const chatBody = JSON.stringify({ model: 'gpt-test-1', messages: [{ role: 'user', content: 'hi' }] });
  async function chat(dispatcher: ProxyAgent): Promise<{ status: number; code: string | undefined }> {
    const res = await dispatcher.request({
      origin: `https://api.openai.com:${standin.port}`,
      path: '/v1/chat/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: chatBody,
    });
    outputs.push(await res.body.text());
    const code = res.headers['x-keyway-error'];
    return { status: res.statusCode, code: typeof code === 'string' ? code : undefined };
  }
  const countedFor = (agent: string) =>
    proxy
      .auditLines()
      .filter((l) => l['agent'] === agent)
      .reduce((sum, l) => {
        const usage = l['usage'] as { input_tokens?: number; output_tokens?: number } | undefined;
        return sum + (usage?.input_tokens ?? 0) + (usage?.output_tokens ?? 0);
      }, 0);

  async function openSocket(agent: string, path = '/v1/responses', headers: Record<string, string> = {}): Promise<WebSocket> {
    const authority = `api.openai.com:${standin.port}`;
    const basic = Buffer.from(`${agent}:${AGENT_KEY}`).toString('base64');
    const tunnel = await openTunnel(proxy.port, authority, `Proxy-Authorization: Basic ${basic}\r\n`);
    const ca = readFileSync(proxy.caPath, 'utf8');
    const ws = new WebSocket(`wss://${authority}${path}`, {
      headers: { authorization: 'Bearer keyway-placeholder', ...headers },
      createConnection: (() => tlsConnect({ socket: tunnel, servername: 'api.openai.com', ca })) as unknown as typeof netConnect,
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    return ws;
  }

  it('a WebSocket to a path other than /v1/responses is refused under a budget', async () => {
    await expect(openSocket('realtime', '/v1/realtime')).rejects.toThrow(/upgrade refused: 429/);
  });

  it('many requests at once right at the limit: the overshoot is bounded by what was in flight', async () => {
    const rush = as('rush');
    const IN_FLIGHT = 8;
    const answers = await Promise.all(Array.from({ length: IN_FLIGHT }, () => chat(rush)));
    for (const a of answers) if (a.status !== 200) expect(a.code).toBe('budget_exceeded');
    await waitFor(() => (proxy.auditLines().filter((l) => l['agent'] === 'rush').length === IN_FLIGHT ? true : undefined), 'every line');
    const passed = answers.filter((a) => a.status === 200).length;
    expect(countedFor('rush')).toBe(passed * BILLED_TOKENS);
    // Once those have ended, the budget is used: the next is refused, nothing billed.
    const before = billed.length;
    expect((await chat(rush)).code).toBe('budget_exceeded');
    expect(billed.length).toBe(before);
  });

  it('a WebSocket opened under the budget gets no response once the budget is used elsewhere', async () => {
    const ws = await openSocket('sockets');
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const completed: unknown[] = [];
    ws.on('message', (data) => {
      const event = JSON.parse(String(data)) as { type: string };
      if (event.type === 'response.completed') completed.push(event);
    });
    // The budget is used up over HTTP while the socket sits idle.
    const http = as('sockets');
    for (let i = 0; i < 3; i++) expect((await chat(http)).status).toBe(200);
    await waitFor(() => (countedFor('sockets') >= LIMIT ? true : undefined), 'the budget used');
    expect((await chat(http)).code).toBe('budget_exceeded');
    const sent = socketMessages.length;
    ws.send(JSON.stringify({ type: 'response.create', model: 'gpt-test-3', input: [] }));
    expect(await closed).toBe(1008);
    expect(completed, 'no response past the budget').toHaveLength(0);
    expect(socketMessages.length, 'the vendor was asked for nothing').toBe(sent);
  });

  it('many responses on one socket: it is closed once the budget is used, and the vendor is asked nothing more', async () => {
    const ws = await openSocket('one-socket');
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const asked = socketMessages.length;
    let completed = 0;
    const ask = () => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: 'response.create', model: 'gpt-test-3', input: [] }));
    ws.on('message', (data) => {
      if ((JSON.parse(String(data)) as { type: string }).type !== 'response.completed') return;
      completed++;
      // Ask again at once, and again, as an agent racing its budget would.
      ask();
      ask();
    });
    ask();
    expect(await closed).toBe(1008);
    await waitFor(
      () => (proxy.auditLines().some((l) => l['agent'] === 'one-socket' && l['code'] === 'budget_exceeded') ? true : undefined),
      "the socket's line",
    );
    // Everything the vendor answered on the socket is counted; once counted past the limit, nothing
    // more is asked (two asks race each answer, so one may be in flight as the limit is crossed).
    const answered = socketMessages.length - asked;
    expect(countedFor('one-socket')).toBe(answered * BILLED_TOKENS);
    expect(countedFor('one-socket')).toBeGreaterThanOrEqual(LIMIT);
    expect(countedFor('one-socket')).toBeLessThanOrEqual(LIMIT + BILLED_TOKENS);
    expect(completed).toBeLessThanOrEqual(answered);
  });

  it('a response asked in a binary message or in fragments is counted', async () => {
    const ws = await openSocket('frames');
    let completed = 0;
    const done = new Promise<void>((resolve) =>
      ws.on('message', (data) => {
        if ((JSON.parse(String(data)) as { type: string }).type === 'response.completed' && ++completed === 2) resolve();
      }),
    );
    const create = JSON.stringify({ type: 'response.create', model: 'gpt-test-3', input: [] });
    ws.send(Buffer.from(create), { binary: true });
    ws.send(create.slice(0, 10), { fin: false });
    ws.send(create.slice(10), { fin: true });
    await done;
    ws.close();
    const line = await waitFor(() => proxy.auditLines().find((l) => l['agent'] === 'frames' && l['status'] === 101), "the socket's line");
    expect(line['usage']).toMatchObject({ input_tokens: 2 * BILLED_USAGE.input, output_tokens: 2 * BILLED_USAGE.output });
  });

  it('a response never completed on a socket the agent closes is counted for what was delivered', async () => {
    const ws = await openSocket('unfinished', '/v1/responses', { 'x-hang-socket': '1' });
    const delta = new Promise<void>((resolve) =>
      ws.on('message', (data) => {
        if ((JSON.parse(String(data)) as { type: string }).type === 'response.output_text.delta') resolve();
      }),
    );
    ws.send(JSON.stringify({ type: 'response.create', model: 'gpt-test-3', input: [] }));
    await delta;
    ws.terminate();
    const line = await waitFor(() => proxy.auditLines().find((l) => l['agent'] === 'unfinished' && l['status'] === 101), "the socket's line");
    expect(line['usage']).toMatchObject({ partial: true });
    // The output delivered, and the input estimated from the message that asked for it.
    expect((line['usage'] as { output_tokens: number }).output_tokens).toBeGreaterThan(0);
    expect((line['usage'] as { input_tokens: number }).input_tokens).toBeGreaterThan(0);
  });

  it('hanging up after the head and mid-event: something is still counted', async () => {
    const leaver = as('leaver');
    for (const when of ['after-head', 'mid-event'] as const) {
      const lines = proxy.auditLines().length;
      const controller = new AbortController();
      const res = leaver.request({
        origin: `https://api.anthropic.com:${standin.port}`,
        path: '/v1/messages',
        method: 'POST',
        signal: controller.signal,
        headers: { 'content-type': 'application/json', 'x-hang': when },
        body: JSON.stringify({ model: 'claude-test-1', max_tokens: 10, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      });
      res.catch(() => undefined);
      const answer = await res;
      await answer.body[Symbol.asyncIterator]().next();
      controller.abort();
      await waitFor(() => (proxy.auditLines().length > lines ? true : undefined), `the line of a hang-up ${when}`);
      const line = proxy.auditLines().at(-1)!;
      const usage = line['usage'] as { input_tokens?: number; output_tokens?: number } | undefined;
      expect((usage?.input_tokens ?? 0) + (usage?.output_tokens ?? 0), `hang-up ${when}: ${JSON.stringify(line)}`).toBeGreaterThan(0);
      for (const r of held.splice(0)) r.destroy();
    }
  });

  it('a long prompt sent chunked, its answer read to the last delta, then a hang-up: its input is still counted', async () => {
    const prompt = 'a long context '.repeat(4_000); // 60,000 bytes: about 15,000 tokens at four bytes a token
    const body = JSON.stringify({ model: 'gpt-test-3', stream: true, input: prompt });
    const controller = new AbortController();
    // A stream body has no declared length: undici sends it chunked.
    const res = await as('chunked').request({
      origin: `https://api.openai.com:${standin.port}`,
      path: '/v1/responses',
      method: 'POST',
      signal: controller.signal,
      headers: { 'content-type': 'application/json', 'x-hang': 'before-usage' },
      body: Readable.from([Buffer.from(body.slice(0, 1000)), Buffer.from(body.slice(1000))]),
    });
    let seen = '';
    for await (const chunk of res.body) {
      seen += String(chunk);
      if (seen.includes('response.output_text.done')) break;
    }
    controller.abort();
    const line = await waitFor(() => proxy.auditLines().find((l) => l['agent'] === 'chunked' && l['usage'] !== undefined), 'the line');
    expect(line['usage']).toMatchObject({ partial: true });
    expect((line['usage'] as { input_tokens: number }).input_tokens).toBeGreaterThanOrEqual(Math.floor(Buffer.byteLength(body) / 4));
  });

  it('no real key in any output, audit line or log', () => {
    const everything = [...outputs, ...proxy.logs, readFileSync(proxy.auditPath, 'utf8')].join('\n');
    expect(findLeak(everything, KEY)).toBeUndefined();
  });
});

/** A Responses socket (upgrades carrying x-hang-socket) that starts each response, gives one delta, and never completes it. */
function hangingResponses(messages: unknown[]): StandinWsHandler {
  return (req) => {
    if (req.headers['x-hang-socket'] === undefined) return undefined;
    return {
      accept: (socket) =>
        socket.on('message', (data) => {
          messages.push(String(data));
          const response = { id: 'resp_hang', object: 'response', status: 'in_progress', model: 'gpt-test-3', output: [], usage: null };
          socket.send(JSON.stringify({ type: 'response.created', sequence_number: 0, response }));
          socket.send(
            JSON.stringify({
              type: 'response.output_text.delta',
              sequence_number: 1,
              item_id: 'msg',
              output_index: 0,
              content_index: 0,
              delta: 'A beginning that never ends',
            }),
          );
        }),
    };
  };
}

/**
 * A Responses stream (x-hang: before-usage) that gives every delta of its answer and then waits:
 * its usage (input included) would come only in response.completed.
 */
function usageLastResponses(billed: Billed[], held: ServerResponse[]): StandinHandler {
  return (req, res) => {
    if (req.host !== 'api.openai.com' || req.headers['x-hang'] !== 'before-usage') return false;
    billed.push({ host: req.host, path: req.path, tokens: BILLED_TOKENS });
    held.push(res);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const response = { id: 'resp_1', object: 'response', status: 'in_progress', model: 'gpt-test-3', output: [], usage: null };
    res.write(`event: response.created\ndata: ${JSON.stringify({ type: 'response.created', response })}\n\n`);
    for (const delta of ['The whole ', 'answer, ', 'delivered.'])
      res.write(`event: response.output_text.delta\ndata: ${JSON.stringify({ type: 'response.output_text.delta', delta })}\n\n`);
    res.write(`event: response.output_text.done\ndata: ${JSON.stringify({ type: 'response.output_text.done', text: 'The whole answer, delivered.' })}\n\n`);
    return true;
  };
}

/** Anthropic streams that stop where the test says (header x-hang): after the head, or in the middle of an event after a first delta. */
function hangingAnthropic(billed: Billed[], held: ServerResponse[]): StandinHandler {
  return (req, res) => {
    const when = req.headers['x-hang'];
    if (req.host !== 'api.anthropic.com' || typeof when !== 'string') return false;
    billed.push({ host: req.host, path: req.path, tokens: BILLED_TOKENS });
    held.push(res);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    if (when === 'after-head') return res.write(': keep-alive\n\n') || true;
    res.write('event: message_start\ndata: {"type":"message_start","message":{"model":"claude-test-1","usage":{"input_tokens":1000,"output_tokens":1}}}\n\n');
    res.write('event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"first "}}\n\n');
    res.write('event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"half of an ev');
    return true;
  };
}
