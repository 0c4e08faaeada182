// Default deny on a model host (issue 85): under a model budget, every request to a vendor's host is
// metered, free (a read, or a listed non-model POST) or refused with budget_unmeterable, through the
// real proxy with real clients: paths outside the API (ChatGPT's web API, a /v2 nobody listed),
// their case and encoding variants, method overrides, gRPC with a real grpc-js client over HTTP/2,
// gRPC-Web over HTTP/1.1, a gRPC or protobuf type on a REST path, and the vendors' regional hosts.
// The stand-ins answer (and would bill) anything that reaches them: an attempt is refused only when
// they saw nothing of it. Controls: the same agent's metered calls with the official SDKs are
// counted, a listed telemetry POST passes, and with no budget the same requests go up.
import * as grpc from '@grpc/grpc-js';
import Anthropic from '@anthropic-ai/sdk';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { anthropicHandler } from '../helpers/model-standins/anthropic.ts';
import { openaiHandler } from '../helpers/model-standins/openai.ts';
import { type StandinServer, sendJson, startStandinServer } from '../helpers/model-standins/server.ts';
import { exchange, openTunnel, parseResponse, startTls } from '../helpers/raw-http.ts';
import { mintTestLeaf } from '../helpers/test-leaf.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY = `${CANARY}-unmeterable-key`;
const AGENT_KEY = 'unmeterable-agent-key-0123456789';
const HOSTS = [
  'api.anthropic.com',
  'api.openai.com',
  'eu.api.openai.com',
  'chatgpt.com',
  'generativelanguage.googleapis.com',
  'aiplatform.us.rep.googleapis.com',
] as const;
type Host = (typeof HOSTS)[number];
const USAGE = { input: 1000, output: 500 };

// gRPC messages as JSON (no .proto needed): what reaches the stand-in is what counts here.
type Msg = Record<string, unknown>;
const json = { serialize: (m: Msg) => Buffer.from(JSON.stringify(m)), deserialize: (b: Buffer) => JSON.parse(b.toString()) as Msg };
const codec = {
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
};
const GENERATIVE = '/google.ai.generativelanguage.v1beta.GenerativeService';
const GRPC_SERVICE = {
  generate: { path: `${GENERATIVE}/GenerateContent`, requestStream: false, responseStream: false, ...codec },
  stream: { path: `${GENERATIVE}/StreamGenerateContent`, requestStream: false, responseStream: true, ...codec },
  vertex: { path: '/google.cloud.aiplatform.v1.PredictionService/GenerateContent', requestStream: false, responseStream: false, ...codec },
} satisfies grpc.ServiceDefinition;
type GrpcClient = grpc.Client & Record<keyof typeof GRPC_SERVICE, (...args: unknown[]) => unknown>;
const ANSWER = { candidates: [{ content: { parts: [{ text: 'billed' }] } }], usageMetadata: { promptTokenCount: 1000, candidatesTokenCount: 500 } };

describe('on a model host, a request is metered, free, or refused while a budget applies', () => {
  let standin: StandinServer;
  let grpcServer: grpc.Server;
  let grpcPort = 0;
  /** The gRPC calls that reached the vendor, by path. */
  const grpcCalls: string[] = [];
  let proxy: TestProxy;
  const dispatchers: ProxyAgent[] = [];
  const outputs: string[] = [];
  const as = (id: string) => {
    const d = new ProxyAgent({ uri: `http://${id}:${AGENT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    dispatchers.push(d);
    return d;
  };

  beforeAll(async () => {
    standin = await startStandinServer({
      handlers: [
        anthropicHandler({ host: 'api.anthropic.com', keys: [KEY], reply: { usage: USAGE } }),
        openaiHandler({ host: 'eu.api.openai.com', keys: [KEY], reply: { usage: USAGE } }),
        // A vendor that answers (and would bill) whatever else reaches it.
        (req, res) => sendJson(res, 200, { answered: `${req.method} ${req.path}` }),
      ],
    });
    grpcServer = new grpc.Server();
    const answer = (name: string) => (call: grpc.ServerUnaryCall<Msg, Msg>, done: grpc.sendUnaryData<Msg>) => {
      grpcCalls.push(name);
      if (call.metadata.get('x-goog-api-key')[0] !== KEY) return done({ code: grpc.status.UNAUTHENTICATED, details: 'API key not valid' });
      done(null, ANSWER);
    };
    grpcServer.addService(GRPC_SERVICE, {
      generate: answer('GenerateContent'),
      vertex: answer('PredictionService'),
      stream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
        grpcCalls.push('StreamGenerateContent');
        call.write(ANSWER);
        call.end();
      },
    });
    const leaf = mintTestLeaf(['generativelanguage.googleapis.com', 'aiplatform.us.rep.googleapis.com']);
    const credentials = grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(leaf.cert), private_key: Buffer.from(leaf.key) }]);
    grpcPort = await new Promise<number>((resolve, reject) => grpcServer.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
    const port = standin.port;
    const on = (host: string) => [`${host}:${port}`, `${host}:${grpcPort}`];
    proxy = await startProxy({
      env: { MODEL_KEY: KEY, AGENT_KEY },
      config: {
        proxy: { hosts: Object.fromEntries(HOSTS.map((h) => [h, '127.0.0.1'])) },
        grants: {
          anthropic: { type: 'api_key', domains: on('api.anthropic.com'), secret: 'env:MODEL_KEY', inject: { header: 'x-api-key' } },
          openai: { type: 'bearer', domains: [...on('api.openai.com'), ...on('eu.api.openai.com')], secret: 'env:MODEL_KEY' },
          chatgpt: { type: 'bearer', domains: on('chatgpt.com'), secret: 'env:MODEL_KEY' },
          gemini: {
            type: 'api_key',
            domains: [...on('generativelanguage.googleapis.com'), ...on('aiplatform.us.rep.googleapis.com')],
            secret: 'env:MODEL_KEY',
            inject: { header: 'x-goog-api-key' },
          },
        },
        agents: { bot: { key: 'env:AGENT_KEY' }, free: { key: 'env:AGENT_KEY' } },
        // Far from its limit: a refusal here is for what cannot be metered, never for being over.
        budgets: [{ agent: 'bot', limit: { tokens: 1_000_000_000 }, per: 'day' }],
      },
    });
  });
  afterAll(async () => {
    for (const d of dispatchers) await d.close();
    await proxy?.stop();
    await standin?.close();
    grpcServer?.forceShutdown();
  });

  interface Attempt {
    host: Host;
    path: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
  }

  /** Sends one request with its target exactly as written (undici's dispatcher API does not normalise it). */
  async function send(agent: ProxyAgent, attempt: Attempt) {
    const res = await agent.request({
      origin: `https://${attempt.host}:${standin.port}`,
      path: attempt.path,
      method: (attempt.method ?? 'POST') as 'POST',
      headers: { 'content-type': 'application/json', ...attempt.headers },
      body: attempt.body ?? (attempt.method === 'GET' ? undefined : '{"model":"m","input":"hi"}'),
    });
    const text = await res.body.text();
    outputs.push(text);
    const code = res.headers['x-keyway-error'];
    return { status: res.statusCode, code: typeof code === 'string' ? code : undefined, text, retryAfter: res.headers['retry-after'] };
  }

  const ATTACKS: Array<[string, Attempt]> = [
    ['an unlisted version', { host: 'api.anthropic.com', path: '/v2/messages' }],
    ['an unlisted path outside /v1/', { host: 'api.anthropic.com', path: '/api/x' }],
    ["Claude Code's title generator (runs a model)", { host: 'api.anthropic.com', path: '/api/organizations/o/dust/generate_title_and_branch' }],
    ['a listed path in another case', { host: 'api.anthropic.com', path: '/API/event_logging/batch' }],
    ['a listed path with a parameter', { host: 'api.anthropic.com', path: '/api/event_logging/batch;x' }],
    ['a listed path with a trailing slash', { host: 'api.anthropic.com', path: '/api/event_logging/batch/' }],
    ['a listed path under PUT', { host: 'api.anthropic.com', path: '/api/event_logging/batch', method: 'PUT' }],
    [
      'a free read made a POST by override',
      { host: 'api.anthropic.com', path: '/api/oauth/profile', method: 'GET', headers: { 'x-http-method-override': 'POST' } },
    ],
    [
      'a listed path that names another by X-Original-URL',
      { host: 'api.anthropic.com', path: '/api/event_logging/batch', headers: { 'x-original-url': '/api/x' } },
    ],
    ['/api/ on the OpenAI host', { host: 'api.openai.com', path: '/api/x' }],
    ['/v2/ on the OpenAI host', { host: 'api.openai.com', path: '/v2/chat/completions' }],
    ["ChatGPT's web API (a model call)", { host: 'chatgpt.com', path: '/backend-api/conversation' }],
    ["Codex's cloud tasks (a model call)", { host: 'chatgpt.com', path: '/backend-api/wham/tasks' }],
    ['ChatGPT in another case', { host: 'chatgpt.com', path: '/Backend-API/conversation' }],
    ['a route no meter reads on the EU host', { host: 'eu.api.openai.com', path: '/v1/images/generations' }],
    [
      'gRPC-Web on its gRPC path',
      {
        host: 'generativelanguage.googleapis.com',
        path: `${GENERATIVE}/GenerateContent`,
        headers: { 'content-type': 'application/grpc-web+proto' },
        body: Buffer.alloc(5),
      },
    ],
    [
      'gRPC-Web text on its gRPC path',
      {
        host: 'generativelanguage.googleapis.com',
        path: `${GENERATIVE}/StreamGenerateContent`,
        headers: { 'content-type': 'application/grpc-web-text' },
        body: 'AAAAAAA=',
      },
    ],
    [
      'gRPC on a Vertex REP host',
      {
        host: 'aiplatform.us.rep.googleapis.com',
        path: '/google.cloud.aiplatform.v1.PredictionService/GenerateContent',
        headers: { 'content-type': 'application/grpc-web' },
        body: Buffer.alloc(5),
      },
    ],
    [
      'a gRPC body on a REST path',
      {
        host: 'generativelanguage.googleapis.com',
        path: '/v1beta/models/m:generateContent',
        headers: { 'content-type': 'application/grpc' },
        body: Buffer.alloc(5),
      },
    ],
    [
      'a protobuf Accept on a REST path',
      {
        host: 'generativelanguage.googleapis.com',
        path: '/v1beta/models/m:generateContent',
        headers: { accept: 'application/x-protobuf' },
        body: '{"contents":[]}',
      },
    ],
  ];

  it.each(ATTACKS)('refused under a budget with budget_unmeterable, nothing sent: %s', async (_name, attempt) => {
    const seen = standin.seen.length;
    const outcome = await send(as('bot'), attempt);
    expect(outcome.status, outcome.text).toBe(429);
    expect(outcome.code).toBe('budget_unmeterable');
    expect(outcome.text).toContain('keyway cannot meter');
    expect(outcome.text).toContain('a model budget applies');
    // Never meterable: no Retry-After tells the agent to come back.
    expect(outcome.retryAfter).toBeUndefined();
    expect(standin.seen.length).toBe(seen);
  });

  it('the refusal names why: gRPC, or a route no meter reads', async () => {
    const grpcWeb = await send(as('bot'), ATTACKS.find(([name]) => name === 'a gRPC body on a REST path')![1]);
    expect(grpcWeb.text).toContain('gRPC');
    const unlisted = await send(as('bot'), { host: 'api.anthropic.com', path: '/api/x' });
    expect(unlisted.text).toContain('keyway cannot meter POST /api/x (a route no meter of keyway reads) on grant anthropic');
  });

  it('with no budget the same requests go up (the stand-in serves them): the refusals above are the budget gate', async () => {
    const free = as('free');
    for (const [name, attempt] of ATTACKS) {
      const seen = standin.seen.length;
      const outcome = await send(free, attempt);
      expect(outcome.code, name).toBeUndefined();
      expect(standin.seen.length, name).toBe(seen + 1);
    }
  });

  it("a listed non-model POST and reads pass under the budget (Claude Code's telemetry, its OAuth profile)", async () => {
    const bot = as('bot');
    for (const attempt of [
      { host: 'api.anthropic.com', path: '/api/event_logging/v2/batch' },
      // keyway decodes an escaped unreserved character before it judges, and sends the path so:
      // what reaches the vendor is the listed path itself.
      { host: 'api.anthropic.com', path: '/api/event_logging/%62atch' },
      { host: 'api.anthropic.com', path: '/api/oauth/profile', method: 'GET' },
      { host: 'chatgpt.com', path: '/backend-api/wham/accounts/check', method: 'GET' },
    ] as Attempt[]) {
      const seen = standin.seen.length;
      const outcome = await send(bot, attempt);
      expect(outcome.code, attempt.path).toBeUndefined();
      expect(standin.seen.length).toBe(seen + 1);
      expect(standin.seen.at(-1)?.path).toBe(attempt.path.replace('%62', 'b'));
    }
  });

  it('the official SDKs are metered under the budget, on the EU host of OpenAI too (controls)', async () => {
    const bot = as('bot');
    const viaKeyway = ((input: string | URL | Request, init?: RequestInit) =>
      undiciFetch(input as never, { ...(init as object), dispatcher: bot } as never)) as unknown as typeof fetch;
    const lines = proxy.auditLines().length;
    const anthropic = new Anthropic({ apiKey: 'keyway-placeholder', baseURL: `https://api.anthropic.com:${standin.port}`, fetch: viaKeyway, maxRetries: 0 });
    await anthropic.messages.create({ model: 'claude-test-1', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] });
    const openai = new OpenAI({ apiKey: 'keyway-placeholder', baseURL: `https://eu.api.openai.com:${standin.port}/v1`, fetch: viaKeyway, maxRetries: 0 });
    await openai.chat.completions.create({ model: 'gpt-test-1', messages: [{ role: 'user', content: 'hi' }] });
    const metered = await waitFor(() => {
      const found = proxy
        .auditLines()
        .slice(lines)
        .filter((l) => l['usage'] !== undefined);
      return found.length === 2 ? found : undefined;
    }, 'two metered lines');
    expect(metered.map((l) => [l['host'], l['usage']])).toEqual([
      ['api.anthropic.com', expect.objectContaining({ input_tokens: USAGE.input, output_tokens: USAGE.output })],
      ['eu.api.openai.com', expect.objectContaining({ input_tokens: USAGE.input, output_tokens: USAGE.output })],
    ]);
  });

  it('a model call with an Upgrade header that is no WebSocket handshake is judged as the call it is: metered, with a budget or without', async () => {
    const body = JSON.stringify({ model: 'gpt-test-1', messages: [{ role: 'user', content: 'hi' }] });
    for (const agent of ['free', 'bot']) {
      const authority = `eu.api.openai.com:${standin.port}`;
      const basic = Buffer.from(`${agent}:${AGENT_KEY}`).toString('base64');
      const tls = await startTls(
        await openTunnel(proxy.port, authority, `Proxy-Authorization: Basic ${basic}\r\n`),
        'eu.api.openai.com',
        readFileSync(proxy.caPath, 'utf8'),
      );
      const lines = proxy.auditLines().length;
      const raw = await exchange(
        tls,
        `POST /v1/chat/completions HTTP/1.1\r\nHost: ${authority}\r\nAuthorization: Bearer keyway-placeholder\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: Upgrade, close\r\nUpgrade: h2c\r\n\r\n${body}`,
      );
      outputs.push(raw);
      expect(parseResponse(raw).status, agent).toBe(200);
      const line = await waitFor(
        () =>
          proxy
            .auditLines()
            .slice(lines)
            .find((l) => l['agent'] === agent),
        `${agent}'s line`,
      );
      expect(line['usage'], agent).toMatchObject({ input_tokens: USAGE.input, output_tokens: USAGE.output });
    }
  });

  /** A grpc-js client through keyway (grpc_proxy, read when the channel is made) as `agent`. */
  function grpcClient(agent: string, host: string): GrpcClient {
    process.env['grpc_proxy'] = `http://${agent}:${AGENT_KEY}@127.0.0.1:${proxy.port}`;
    try {
      const Client = grpc.makeGenericClientConstructor(GRPC_SERVICE, 'Generative');
      return new Client(`${host}:${grpcPort}`, grpc.credentials.createSsl(readFileSync(proxy.caPath))) as unknown as GrpcClient;
    } finally {
      delete process.env['grpc_proxy'];
    }
  }

  const unary = (client: GrpcClient, method: 'generate' | 'vertex') =>
    new Promise<{ error: grpc.ServiceError | null; answer: Msg | undefined }>((resolve) => {
      const metadata = new grpc.Metadata();
      metadata.set('x-goog-api-key', 'keyway-placeholder');
      client[method]({ contents: [{ parts: [{ text: 'hi' }] }] }, metadata, (error: grpc.ServiceError | null, answer?: Msg) => resolve({ error, answer }));
    });

  const streamed = (client: GrpcClient) =>
    new Promise<{ error: Error | undefined; answers: Msg[] }>((resolve) => {
      const answers: Msg[] = [];
      const call = client.stream({ contents: [] }, new grpc.Metadata()) as grpc.ClientReadableStream<Msg>;
      call.on('data', (m: Msg) => answers.push(m));
      call.on('error', (error: Error) => resolve({ error, answers }));
      call.on('end', () => resolve({ error: undefined, answers }));
    });

  it('gRPC over HTTP/2 (a real grpc-js client): refused under a budget, unary and streamed, Gemini and Vertex; nothing reaches the vendor', async () => {
    const lines = proxy.auditLines().length;
    const gemini = grpcClient('bot', 'generativelanguage.googleapis.com');
    const vertex = grpcClient('bot', 'aiplatform.us.rep.googleapis.com');
    try {
      const one = await unary(gemini, 'generate');
      expect(one.error?.message).toMatch(/429/);
      const two = await streamed(gemini);
      expect(two.error?.message).toMatch(/429/);
      expect(two.answers).toEqual([]);
      const three = await unary(vertex, 'vertex');
      expect(three.error?.message).toMatch(/429/);
    } finally {
      gemini.close();
      vertex.close();
    }
    expect(grpcCalls).toEqual([]);
    const refused = await waitFor(() => {
      const found = proxy
        .auditLines()
        .slice(lines)
        .filter((l) => l['code'] === 'budget_unmeterable');
      return found.length === 3 ? found : undefined;
    }, 'three refusals');
    expect(refused.map((l) => [l['agent'], l['decision'], l['status']])).toEqual(Array(3).fill(['bot', 'deny', 429]));
    expect(refused.map((l) => l['path'])).toEqual([`${GENERATIVE}/GenerateContent`, `${GENERATIVE}/StreamGenerateContent`, GRPC_SERVICE.vertex.path]);
  });

  it('gRPC with no budget goes up with the credential (the vendor answers it): the refusal above is the budget gate', async () => {
    const gemini = grpcClient('free', 'generativelanguage.googleapis.com');
    try {
      const one = await unary(gemini, 'generate');
      expect(one.error).toBeNull();
      expect(one.answer).toEqual(ANSWER);
    } finally {
      gemini.close();
    }
    expect(grpcCalls).toEqual(['GenerateContent']);
  });

  it('no real key in any output, audit line or log', () => {
    const everything = [...outputs, ...proxy.logs, readFileSync(proxy.auditPath, 'utf8')].join('\n');
    expect(findLeak(everything, KEY)).toBeUndefined();
  });
});
