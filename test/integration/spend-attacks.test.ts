// Spend attacks (issue 63): an agent under a model budget tries to get answers from a vendor that
// bills while keyway counts less, through the real proxy with real clients. The vendor here is a
// lenient one (lenient-vendor.ts: loose paths, method overrides, Google's system parameters,
// compression): `billed` is what it would charge. Every attempt must end one of two ways: keyway
// refuses it (nothing billed), or keyway counts at least what was billed.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
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
type Host = (typeof HOSTS)[number];

interface Attempt {
  host: Host;
  path: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

interface Outcome {
  status: number;
  keywayError: string | undefined;
  text: string;
}

describe('spend attacks: every answer the vendor bills is counted, or refused', () => {
  let standin: StandinServer;
  let proxy: TestProxy;
  let bot: ProxyAgent;
  const billed: Billed[] = [];
  const outputs: string[] = [];

  beforeAll(async () => {
    standin = await startStandinServer({ handlers: [lenientVendor(billed)] });
    const port = standin.port;
    proxy = await startProxy({
      env: { MODEL_KEY: KEY, AGENT_KEY },
      config: {
        proxy: { hosts: Object.fromEntries(HOSTS.map((h) => [h, '127.0.0.1'])) },
        grants: {
          anthropic: { type: 'api_key', domains: [`api.anthropic.com:${port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-api-key' } },
          openai: { type: 'bearer', domains: [`api.openai.com:${port}`], secret: 'env:MODEL_KEY' },
          gemini: { type: 'api_key', domains: [`generativelanguage.googleapis.com:${port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-goog-api-key' } },
        },
        agents: { bot: { key: 'env:AGENT_KEY' }, free: { key: 'env:AGENT_KEY' } },
        // A budget far from its limit: each attempt is judged by what is counted, not refused for being over.
        budgets: [{ agent: 'bot', limit: { tokens: 1_000_000_000 }, per: 'day' }],
      },
    });
    bot = new ProxyAgent({ uri: `http://bot:${AGENT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await bot?.close();
    await proxy?.stop();
    await standin?.close();
  });

  /** Sends one request with its target exactly as written (undici's dispatcher API does not normalise it). */
  async function send(attempt: Attempt): Promise<Outcome> {
    const res = await bot.request({
      origin: `https://${attempt.host}:${standin.port}`,
      path: attempt.path,
      method: (attempt.method ?? 'POST') as 'POST',
      headers: { 'content-type': 'application/json', ...attempt.headers },
      body: attempt.body,
    });
    const text = await res.body.text();
    outputs.push(text);
    const error = res.headers['x-keyway-error'];
    return { status: res.statusCode, keywayError: typeof error === 'string' ? error : undefined, text };
  }

  /** Tokens keyway counted on the audit lines written since `from` (an unknown usage counts none). */
  const countedSince = (from: number) =>
    proxy
      .auditLines()
      .slice(from)
      .reduce((sum, l) => {
        const usage = l['usage'] as { input_tokens?: number; output_tokens?: number } | undefined;
        return sum + (usage?.input_tokens ?? 0) + (usage?.output_tokens ?? 0);
      }, 0);

  /** Runs `attempt`; asserts it was refused with nothing billed, or counted at least as billed. */
  async function judged(attempt: Attempt): Promise<'refused' | 'counted'> {
    const lines = proxy.auditLines().length;
    const before = billed.length;
    const outcome = await send(attempt);
    // One audit line per request, written as the exchange closes.
    await waitFor(() => (proxy.auditLines().length > lines ? true : undefined), `the audit line of ${attempt.method ?? 'POST'} ${attempt.path}`);
    const vendorBilled = billed.slice(before).reduce((sum, b) => sum + b.tokens, 0);
    if (outcome.keywayError !== undefined) {
      expect(vendorBilled, `${attempt.path}: refused by keyway (${outcome.keywayError}), so nothing reached the vendor`).toBe(0);
      return 'refused';
    }
    expect(countedSince(lines), `${attempt.path} (${outcome.status}): counted against billed ${vendorBilled}`).toBeGreaterThanOrEqual(vendorBilled);
    return 'counted';
  }

  const messages = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ model: 'claude-test-1', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], ...extra });
  const chat = (extra: Record<string, unknown> = {}) => JSON.stringify({ model: 'gpt-test-1', messages: [{ role: 'user', content: 'hi' }], ...extra });
  const contents = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] });

  it('the plain routes are counted (the stand-in bills what keyway reads)', async () => {
    expect(await judged({ host: 'api.anthropic.com', path: '/v1/messages', body: messages() })).toBe('counted');
    expect(await judged({ host: 'api.anthropic.com', path: '/v1/messages', body: messages({ stream: true }) })).toBe('counted');
    expect(await judged({ host: 'api.openai.com', path: '/v1/chat/completions', body: chat({ stream: true }) })).toBe('counted');
    expect(await judged({ host: 'generativelanguage.googleapis.com', path: '/v1beta/models/gemini-test-1:generateContent', body: contents })).toBe('counted');
    expect(billed.length).toBe(4);
  });

  it.each([
    '/v1/Messages',
    '/V1/messages',
    '/v1/messages/',
    '/v1//messages',
    '//v1/messages',
    '/v1/./messages',
    '/v1/x/../messages',
    '/v1/%6Dessages',
    '/v1/%6dessages',
    '/v1%2Fmessages',
    '/v1/messages;x=1',
    '/v1/messages;',
    '/v1;x/messages',
    '/v1/messages?beta=true',
    '/v1/messages?',
    '/v1/messages#frag',
    '/v1/messages%3F',
    '/v1/messages%20',
    '/v1/messages.',
    '/v1/messages..',
    '/v1/messages.json',
  ])('Anthropic path %s: counted or refused', async (path) => {
    await judged({ host: 'api.anthropic.com', path, body: messages() });
  });

  it.each(['/v1/Chat/Completions', '/v1/chat/completions/', '/v1/chat%2Fcompletions', '/v1/chat/completions;a', '/v1/chat//completions'])(
    'OpenAI path %s, streamed: counted or refused',
    async (path) => {
      await judged({ host: 'api.openai.com', path, body: chat({ stream: true }) });
    },
  );

  it.each([
    '/v1beta/models/gemini-test-1:GenerateContent',
    '/v1beta/models/gemini-test-1:generateContent/',
    '/v1beta/models/gemini-test-1%3AgenerateContent',
    '/v1beta/models%2Fgemini-test-1:generateContent',
    '/v1beta/models/gemini-test-1:generateContent;x',
  ])('Gemini path %s: counted or refused', async (path) => {
    await judged({ host: 'generativelanguage.googleapis.com', path, body: contents });
  });

  it.each(['GET', 'PUT', 'PATCH', 'DELETE'])('%s with X-HTTP-Method-Override: POST is counted or refused', async (method) => {
    await judged({ host: 'api.anthropic.com', path: '/v1/messages', method, headers: { 'x-http-method-override': 'POST' }, body: messages() });
    await judged({
      host: 'generativelanguage.googleapis.com',
      path: '/v1beta/models/gemini-test-1:generateContent',
      method,
      headers: { 'x-http-method-override': 'POST' },
      body: contents,
    });
  });

  it('a free read that names a model call in X-Original-URL (and a POST override) is counted or refused', async () => {
    await judged({
      host: 'api.anthropic.com',
      path: '/v1/models',
      method: 'GET',
      headers: { 'x-original-url': '/v1/messages', 'x-http-method-override': 'POST' },
      body: messages(),
    });
  });

  it('a Responses request with background set (answered later, read with free GETs) is refused under a budget; a foreground one is counted', async () => {
    const responses = (extra: Record<string, unknown>) => JSON.stringify({ model: 'gpt-test-1', input: 'hi', ...extra });
    for (const background of [true, 'true', 1]) {
      const outcome = await send({ host: 'api.openai.com', path: '/v1/responses', body: responses({ background }) });
      expect(outcome.keywayError, `background: ${JSON.stringify(background)}`).toBe('policy_denied');
      expect(outcome.text).toContain('background');
    }
    // Named twice, whatever the last one says.
    const twice = await send({
      host: 'api.openai.com',
      path: '/v1/responses',
      body: '{"model":"gpt-test-1","input":"hi","background":true,"background":false}',
    });
    expect(twice.keywayError).toBe('policy_denied');
    expect(await judged({ host: 'api.openai.com', path: '/v1/responses', body: responses({ background: false }) })).toBe('counted');
    expect(await judged({ host: 'api.openai.com', path: '/v1/responses', body: responses({}) })).toBe('counted');
  });

  it('with no budget, what cannot be metered still goes (unmetered, flagged unknown)', async () => {
    const free = new ProxyAgent({ uri: `http://free:${AGENT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    try {
      const lines = proxy.auditLines().length;
      const res = await free.request({
        origin: `https://api.openai.com:${standin.port}`,
        path: '/v1/chat/completions',
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: gzipSync(chat({ stream: true })),
      });
      outputs.push(await res.body.text());
      expect(res.statusCode).toBe(200);
      const line = await waitFor(
        () =>
          proxy
            .auditLines()
            .slice(lines)
            .find((l) => l['agent'] === 'free'),
        'the line',
      );
      expect(line['usage']).toMatchObject({ unknown: true });
    } finally {
      await free.close();
    }
  });

  it.each(['gzip', 'br', 'deflate', 'gzip, br, deflate, zstd', 'identity;q=0, gzip'])('an answer compressed as asked (%s) is counted', async (coding) => {
    const headers = { 'accept-encoding': coding };
    await judged({ host: 'api.anthropic.com', path: '/v1/messages', headers, body: messages() });
    await judged({ host: 'api.anthropic.com', path: '/v1/messages', headers, body: messages({ stream: true }) });
    await judged({ host: 'api.openai.com', path: '/v1/chat/completions', headers, body: chat({ stream: true }) });
    await judged({ host: 'generativelanguage.googleapis.com', path: '/v1beta/models/gemini-test-1:streamGenerateContent?alt=sse', headers, body: contents });
  });

  it.each([
    '?alt=json',
    '?alt=sse',
    '?alt=proto',
    '?$alt=proto',
    '?alt=sse&alt=proto',
    '?alt=media',
    '?fields=candidates',
    '?$fields=candidates',
    '?fields=candidates&alt=sse',
    '?fields=*',
    '?alt=json&alt=json',
    '?callback=f',
  ])('Gemini streamGenerateContent%s: counted or refused', async (query) => {
    await judged({ host: 'generativelanguage.googleapis.com', path: `/v1beta/models/gemini-test-1:streamGenerateContent${query}`, body: contents });
  });

  it('Gemini with an X-Goog-FieldMask that leaves usage out: counted or refused', async () => {
    await judged({
      host: 'generativelanguage.googleapis.com',
      path: '/v1beta/models/gemini-test-1:generateContent',
      headers: { 'x-goog-fieldmask': 'candidates' },
      body: contents,
    });
  });

  it.each<[string, string | Buffer, Record<string, string>?]>([
    ['stream as a string', chat({ stream: 'true' })],
    ['include_usage false', chat({ stream: true, stream_options: { include_usage: false } })],
    ['duplicate stream keys', '{"model":"gpt-test-1","messages":[],"stream":false,"stream":true}'],
    ['duplicate stream keys, the last false', '{"model":"gpt-test-1","messages":[],"stream":true,"stream":false}'],
    ['stream as a number', chat({ stream: 1 })],
    [
      'include_usage twice, the first false',
      '{"model":"gpt-test-1","messages":[],"stream":true,"stream_options":{"include_usage":false,"include_usage":true}}',
    ],
    ['a BOM', `\uFEFF${chat({ stream: true })}`],
    ['a gzipped body', gzipSync(chat({ stream: true })), { 'content-encoding': 'gzip' }],
    ['a body over the hold limit', chat({ stream: true, pad: 'x'.repeat(1024 * 1024 + 10) })],
  ])('streamed OpenAI chat with %s: counted or refused', async (_what, body, headers) => {
    await judged({ host: 'api.openai.com', path: '/v1/chat/completions', body, ...(headers === undefined ? {} : { headers }) });
  });

  it('an embeddings answer over 8 MiB (usage at its end) is counted', async () => {
    const input = Array.from({ length: 200 }, (_, i) => `text ${i}`);
    await judged({ host: 'api.openai.com', path: '/v1/embeddings', body: JSON.stringify({ model: 'text-embedding-3-large', input }) });
  });

  it('over HTTP/2 (curl --http2), an override and a path outside the API space are counted or refused', async () => {
    for (const [path, extra] of [
      ['/v1/messages', []],
      ['/v1;x/messages', []],
      ['/v1/messages', ['-X', 'GET', '-H', 'x-http-method-override: POST']],
    ] as const) {
      const lines = proxy.auditLines().length;
      const before = billed.length;
      const run = await curl(proxy, standin.port, `https://api.anthropic.com:${standin.port}${path}`, ['--http2', '-d', messages(), ...extra]);
      outputs.push(run.stdout, run.stderr);
      expect(run.stdout).toMatch(/^HTTP\/2 /m);
      await waitFor(() => (proxy.auditLines().length > lines ? true : undefined), `the audit line of ${path}`);
      const vendorBilled = billed.slice(before).reduce((sum, b) => sum + b.tokens, 0);
      if (/x-keyway-error/i.test(run.stdout)) expect(vendorBilled).toBe(0);
      else expect(countedSince(lines), `${path} over HTTP/2`).toBeGreaterThanOrEqual(vendorBilled);
    }
  });

  it('no real key in any output, audit line or log', () => {
    const everything = [...outputs, ...proxy.logs, readFileSync(proxy.auditPath, 'utf8')].join('\n');
    expect(findLeak(everything, KEY)).toBeUndefined();
  });
});

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
    await expect(openSocket('realtime', '/v1/realtime')).rejects.toThrow(/403/);
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

/** curl through keyway as agent bot, in a clean environment, trusting keyway's CA only; -i so the head is in stdout. */
function curl(proxy: TestProxy, port: number, url: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const host = new URL(url).hostname;
  return new Promise((resolve) => {
    execFile(
      'curl',
      [
        '-sS',
        '-i',
        '--proxy',
        `http://bot:${AGENT_KEY}@127.0.0.1:${proxy.port}`,
        '--cacert',
        proxy.caPath,
        '--resolve',
        `${host}:${port}:127.0.0.1`,
        '-H',
        'content-type: application/json',
        ...args,
        url,
      ],
      { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: proxy.home } },
      (_err, stdout, stderr) => resolve({ stdout, stderr }),
    );
  });
}
